-- Enrolment codes: single use with a short retry window for the device that used them, and codes issued for one
-- device (a new credential for an enrolled kiosk).
ALTER TABLE enrol_codes ADD COLUMN used_at timestamptz, ADD COLUMN for_device uuid;
