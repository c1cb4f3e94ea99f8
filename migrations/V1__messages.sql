-- Messages waiting for, in, or past delivery.
--
-- A pending message is claimable when its next attempt is due and no live lease holds it.
-- A claim sets lease_expires_at and a fresh claim_token; recording an outcome requires the
-- same claim_token, so a sender whose lease ran out cannot overwrite a newer claim's result.
CREATE TABLE messages (
    id                 uuid        PRIMARY KEY,
    phone_number       text        NOT NULL,
    content            text        NOT NULL CHECK (char_length(content) BETWEEN 1 AND 500),
    status             text        NOT NULL DEFAULT 'pending'
                                   CHECK (status IN ('pending', 'sent', 'failed', 'cancelled')),
    attempts           integer     NOT NULL DEFAULT 0,
    -- attempts made before the latest manual retry; the retry budget counts from here
    attempts_before_retry integer  NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    lease_expires_at   timestamptz,
    claim_token        uuid,
    -- the webhook's messageId, shown as message_id in the API
    webhook_message_id text,
    last_error         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    processed_at       timestamptz
);

-- The claim walks pending messages oldest first.
CREATE INDEX messages_pending_by_age ON messages (created_at, id) WHERE status = 'pending';

-- Listing is newest first, by status or across all of them.
CREATE INDEX messages_by_status_newest ON messages (status, created_at DESC, id DESC);
CREATE INDEX messages_newest ON messages (created_at DESC, id DESC);

-- One row per delivery attempt that reached an outcome.
CREATE TABLE attempts (
    id                 bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message            uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    number             integer     NOT NULL,
    started_at         timestamptz NOT NULL,
    duration_ms        integer     NOT NULL,
    outcome            text        NOT NULL CHECK (outcome IN ('delivered', 'failed')),
    http_status        integer,
    error_kind         text,
    error              text,
    response_excerpt   text
);

CREATE INDEX attempts_by_message ON attempts (message, id);

-- Whether dispatching runs, shared by every instance on this database. One row at most.
CREATE TABLE scheduler (
    singleton          boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    running            boolean     NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
