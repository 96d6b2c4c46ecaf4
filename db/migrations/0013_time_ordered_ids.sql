-- Time-ordered ids (UUID version 7, RFC 9562) for the tables that grow by appending: users, groups, audit
-- events, the email outbox and webhook deliveries and attempts. Random (version 4) ids put every insert
-- at a random place of the primary key, and of each (created_at, id) index when many rows share a
-- transaction's timestamp (a bulk import: 100,000 users and their audit rows); version 7 ids put them at
-- the end. 48 bits of Unix milliseconds, then 74 random bits (gen_random_uuid's): as hard to guess as
-- before, and they say when a row was made, as its createdAt does. Written in SQL, not PostgreSQL 18's
-- uuidv7(), so that older servers run it too; the existing ids stay as they are.
CREATE FUNCTION roster_uuid_v7() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;--> statement-breakpoint
ALTER TABLE "users" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();--> statement-breakpoint
ALTER TABLE "email_outbox" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();--> statement-breakpoint
ALTER TABLE "audit_events" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();--> statement-breakpoint
ALTER TABLE "groups" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();--> statement-breakpoint
ALTER TABLE "webhook_attempts" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ALTER COLUMN "id" SET DEFAULT roster_uuid_v7();