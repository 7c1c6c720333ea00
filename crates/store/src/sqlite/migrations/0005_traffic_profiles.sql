-- The rate curve the producer follows for a topic instead of a constant rate, in the text
-- form of streamhub_model::traffic (checked by the service before it is stored).
ALTER TABLE topics ADD COLUMN traffic_profile TEXT;
