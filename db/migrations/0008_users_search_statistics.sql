-- Custom migration (drizzle-kit generate --custom): drizzle-kit does not manage column statistics targets.
-- GET /users?q= picks its plan from the statistics of email and name (src/infra/paging/estimate.ts): a
-- histogram of 1,000 values instead of 100 tells a term in a thousand rows from a rarer one. ANALYZE
-- (autovacuum's too) then samples 300,000 rows of users instead of 30,000.
ALTER TABLE "users" ALTER COLUMN "email" SET STATISTICS 1000;--> statement-breakpoint
ALTER TABLE "users" ALTER COLUMN "name" SET STATISTICS 1000;--> statement-breakpoint
ANALYZE "users";
