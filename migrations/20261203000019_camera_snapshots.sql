-- Camera snapshots (SPEC section 7, issue 19): the JPEG an agent uploads for a camera
-- (`PUT /api/v1/ingest/snapshots/{camera_id}`), so that operators see what the camera shows.
--
-- At most two rows per camera:
-- * `latest`: the newest upload, replaced by every upload.
-- * `bad`: the first upload of the current or last bad-picture episode (`black`, `uniform`,
--   `frozen`): the picture that proves the state, kept after the camera recovers until the
--   next episode replaces it.
--
-- The foreign key to `camera_state` is the retention rule: when the ingest writer retires a
-- camera (it is no longer in its agent's heartbeats) or a license or agent instance goes away,
-- the camera's row is deleted and its snapshots with it. It also means a snapshot can only be
-- stored for a camera a heartbeat has listed (the upload answers 404 before that).
CREATE TABLE camera_snapshots (
    tenant_id     uuid NOT NULL,
    license_id    uuid NOT NULL,
    camera_id     text NOT NULL,
    kind          text NOT NULL CONSTRAINT camera_snapshots_kind_valid
        CHECK (kind IN ('latest', 'bad')),
    jpeg          bytea NOT NULL,
    -- `octet_length(jpeg)`, kept so that the per-tenant bound sums integers, not detoasts.
    size_bytes    integer NOT NULL CONSTRAINT camera_snapshots_size_valid
        CHECK (size_bytes = octet_length(jpeg)),
    -- SHA-256 of the bytes: the ETag, and "did the picture change?".
    sha256        bytea NOT NULL,
    -- When the agent took the picture (its clock), and when the server received it.
    taken_at      timestamptz NOT NULL,
    received_at   timestamptz NOT NULL,
    -- The picture state the agent reported with the upload (`ok`, `black`, ...), if any.
    picture_state text,
    PRIMARY KEY (tenant_id, license_id, camera_id, kind),
    CONSTRAINT camera_snapshots_camera_fk FOREIGN KEY (tenant_id, license_id, camera_id)
        REFERENCES camera_state (tenant_id, license_id, camera_id) ON DELETE CASCADE
);

-- JPEG does not compress: spare PostgreSQL the attempt on every upload (values over 2 KB are
-- still moved out of line).
ALTER TABLE camera_snapshots ALTER COLUMN jpeg SET STORAGE EXTERNAL;

ALTER TABLE camera_snapshots ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON camera_snapshots
    USING (tenant_id = NULLIF(current_setting('streamwatch.tenant_id', true), '')::uuid);

-- Uploads and reads run in tenant transactions as the application role.
GRANT SELECT, INSERT, UPDATE, DELETE ON camera_snapshots TO streamwatch_app;
