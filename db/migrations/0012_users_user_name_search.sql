-- Substring filters on SCIM userName read the email trigram index for users without a user_name and a
-- partial index on lower(user_name) for the rest; the index on coalesce(user_name, email) repeated the
-- email's trigrams on every insert. The name parts' trigram indexes become partial (no entries for NULL).
DROP INDEX "users_user_name_trgm_idx";--> statement-breakpoint
DROP INDEX "users_given_name_trgm_idx";--> statement-breakpoint
DROP INDEX "users_family_name_trgm_idx";--> statement-breakpoint
CREATE INDEX "users_user_name_trgm_idx" ON "users" USING gin (lower("user_name") gin_trgm_ops) WITH (fastupdate=true,gin_pending_list_limit=1024) WHERE "users"."user_name" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "users_given_name_trgm_idx" ON "users" USING gin (lower("given_name") gin_trgm_ops) WITH (fastupdate=true,gin_pending_list_limit=1024) WHERE "users"."given_name" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "users_family_name_trgm_idx" ON "users" USING gin (lower("family_name") gin_trgm_ops) WITH (fastupdate=true,gin_pending_list_limit=1024) WHERE "users"."family_name" IS NOT NULL;