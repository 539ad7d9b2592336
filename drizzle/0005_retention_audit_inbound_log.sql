CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target" text,
	"outcome" text NOT NULL,
	"detail" jsonb,
	"request_id" text,
	"user_agent" text
);
--> statement-breakpoint
CREATE TABLE "webhook_requests" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"provider" text NOT NULL,
	"account" text NOT NULL,
	"status" integer NOT NULL,
	"outcome" text NOT NULL,
	"source" text NOT NULL,
	"user_agent" text,
	"body_bytes" integer,
	"duration_ms" integer NOT NULL,
	"request_id" text NOT NULL,
	"suppressed" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_log_at_idx" ON "audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "webhook_requests_received_idx" ON "webhook_requests" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "webhook_requests_outcome_idx" ON "webhook_requests" USING btree ("outcome","id");--> statement-breakpoint
CREATE INDEX "webhook_receipts_failed_idx" ON "webhook_receipts" USING btree ("provider") WHERE "webhook_receipts"."state" = 'failed';--> statement-breakpoint
CREATE INDEX "webhook_receipts_settled_idx" ON "webhook_receipts" USING btree ("processed_at") WHERE "webhook_receipts"."state" in ('processed', 'ignored');--> statement-breakpoint
CREATE INDEX "outbox_created_idx" ON "outbox" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "event_deliveries_delivered_idx" ON "event_deliveries" USING btree ("delivered_at") WHERE "event_deliveries"."state" = 'delivered';