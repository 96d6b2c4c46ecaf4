-- Added by hand to the generated file: drizzle-kit does not manage extensions. pg_trgm is a trusted
-- extension (PostgreSQL >= 13): the database owner may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX "admins_email_id_idx" ON "admins" USING btree ("email","id");--> statement-breakpoint
CREATE INDEX "admins_name_id_idx" ON "admins" USING btree ("name","id");--> statement-breakpoint
CREATE INDEX "users_email_trgm_idx" ON "users" USING gin (lower("email") gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "users_name_trgm_idx" ON "users" USING gin (lower(coalesce("name", '')) gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action","created_at","id");--> statement-breakpoint
-- Added by hand too: the ids of the users whose email or name matches a LIKE pattern, always from the
-- trigram indexes (the planner, misjudging what lower() and LIKE cost per row, may otherwise read the
-- whole table). GET /users?q= uses it when the window of the sort order holds too few matches.
CREATE FUNCTION users_search_ids(pattern text) RETURNS SETOF uuid
  LANGUAGE sql STABLE ROWS 100 SET enable_seqscan = off
  AS $$ SELECT id FROM users WHERE lower(email) LIKE pattern OR lower(coalesce(name, '')) LIKE pattern $$;
