-- Added by hand to the generated file: drizzle-kit does not manage extensions. pg_trgm is a trusted
-- extension (PostgreSQL >= 13): the database owner may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX "admins_email_id_idx" ON "admins" USING btree ("email","id");--> statement-breakpoint
CREATE INDEX "admins_name_id_idx" ON "admins" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "users_email_trgm_idx" ON "users" USING gin (lower("email") gin_trgm_ops) WITH (fastupdate=false);--> statement-breakpoint
CREATE INDEX "users_name_trgm_idx" ON "users" USING gin (lower(coalesce("name", '')) gin_trgm_ops) WITH (fastupdate=false);--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action","created_at","id");--> statement-breakpoint
-- Added by hand too: the users whose email or name matches a LIKE pattern (lowercase), always from the
-- trigram indexes (the planner, misjudging what lower() and LIKE cost per row, may otherwise read the
-- whole table). GET /users?q= sorted by email or name uses it when the window of the sort order holds
-- too few matches.
CREATE FUNCTION users_search(pattern text) RETURNS SETOF users
  LANGUAGE sql STABLE ROWS 100 SET enable_seqscan = off
  AS $$ SELECT * FROM users WHERE lower(email) LIKE pattern OR lower(coalesce(name, '')) LIKE pattern $$;
