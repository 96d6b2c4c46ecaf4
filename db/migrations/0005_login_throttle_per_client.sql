-- Edited by hand: drizzle-kit cannot name the old primary key, and orders the new one before its column.
-- The counters are short-lived (LOCKOUT_WINDOW, LOCKOUT_DURATION): they start over, as after a lock ends.
DELETE FROM "login_throttle";--> statement-breakpoint
ALTER TABLE "login_throttle" DROP CONSTRAINT "login_throttle_pkey";--> statement-breakpoint
ALTER TABLE "login_throttle" ADD COLUMN "client" text NOT NULL;--> statement-breakpoint
ALTER TABLE "login_throttle" ADD COLUMN "last_attempt_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "login_throttle" ADD COLUMN "last_attempt_by" text NOT NULL;--> statement-breakpoint
ALTER TABLE "login_throttle" ADD COLUMN "other_attempt_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "login_throttle" ADD COLUMN "expires_at" timestamp with time zone NOT NULL;--> statement-breakpoint
ALTER TABLE "login_throttle" ADD CONSTRAINT "login_throttle_email_client_pk" PRIMARY KEY("email","client");--> statement-breakpoint
CREATE INDEX "login_throttle_expires_at_idx" ON "login_throttle" USING btree ("expires_at");
