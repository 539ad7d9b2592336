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
CREATE INDEX "webhook_requests_received_idx" ON "webhook_requests" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "webhook_requests_outcome_idx" ON "webhook_requests" USING btree ("outcome","id");