-- A channel is picked by its name in the Setup Notification page and in the API's answers, so
-- two channels of one tenant must not share a name. A constraint rather than a check in the
-- application: two creates racing with the same name cannot both win. The API turns its
-- violation into a 422 at `/name`.
ALTER TABLE channels ADD CONSTRAINT channels_name_unique UNIQUE (tenant_id, name);
