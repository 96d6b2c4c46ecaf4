-- Hand-written (drizzle-kit would drop and rebuild the indexes): the users' trigram indexes take fast
-- update with a 1 MB pending list. A storage parameter only; existing entries stay where they are.
ALTER INDEX "users_email_trgm_idx" SET (fastupdate = true, gin_pending_list_limit = 1024);--> statement-breakpoint
ALTER INDEX "users_name_trgm_idx" SET (fastupdate = true, gin_pending_list_limit = 1024);--> statement-breakpoint
ALTER INDEX "users_user_name_trgm_idx" SET (fastupdate = true, gin_pending_list_limit = 1024);--> statement-breakpoint
ALTER INDEX "users_given_name_trgm_idx" SET (fastupdate = true, gin_pending_list_limit = 1024);--> statement-breakpoint
ALTER INDEX "users_family_name_trgm_idx" SET (fastupdate = true, gin_pending_list_limit = 1024);
