CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"public_key" text NOT NULL,
	"issuer" text,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_signed_at" timestamp with time zone
);
--> statement-breakpoint
-- UNLOGGED added by hand to the generated statement: drizzle-kit has no such option. A counter written on
-- every /auth request needs no WAL; a PostgreSQL crash empties it, which only restarts the rate-limit windows.
CREATE UNLOGGED TABLE "rate_limit_hits" (
	"key" text PRIMARY KEY NOT NULL,
	"hits" integer NOT NULL,
	"reset_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "rate_limit_hits_reset_at_idx" ON "rate_limit_hits" USING btree ("reset_at");--> statement-breakpoint
CREATE INDEX "email_outbox_done_idx" ON "email_outbox" USING btree ("created_at") WHERE "email_outbox"."status" <> 'pending';