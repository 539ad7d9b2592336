CREATE SEQUENCE "public"."payment_fetch_fence" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "payments" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"provider_payment_id" text NOT NULL,
	"account" text DEFAULT 'default' NOT NULL,
	"status" text NOT NULL,
	"provider_status" text NOT NULL,
	"amount_minor" bigint NOT NULL,
	"currency" text NOT NULL,
	"refunded_minor" bigint DEFAULT 0 NOT NULL,
	"charged_back_minor" bigint DEFAULT 0 NOT NULL,
	"mode" text,
	"method" text,
	"metadata" jsonb,
	"snapshot" jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"fence" bigint NOT NULL,
	"previous" jsonb,
	"provider_created_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_synced_at" timestamp with time zone,
	"next_poll_at" timestamp with time zone,
	"poll_attempts" integer DEFAULT 0 NOT NULL,
	"poll_lease_owner" text,
	"poll_lease_until" timestamp with time zone,
	"last_polled_at" timestamp with time zone,
	"stuck_notified_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "payment_transitions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"payment_id" bigint NOT NULL,
	"version" integer NOT NULL,
	"source" text NOT NULL,
	"previous_status" text,
	"new_status" text NOT NULL,
	"previous_provider_status" text,
	"new_provider_status" text NOT NULL,
	"fence" bigint NOT NULL,
	"receipt_id" bigint,
	"snapshot" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "webhook_receipts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"account" text DEFAULT 'default' NOT NULL,
	"event_id" text,
	"resource_type" text,
	"resource_id" text,
	"body" "bytea" NOT NULL,
	"headers" jsonb NOT NULL,
	"signature" text NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now(),
	"last_error" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"event_id" text NOT NULL,
	"dedupe_key" text NOT NULL,
	"type" text NOT NULL,
	"provider" text,
	"provider_payment_id" text,
	"payment_version" integer,
	"payload" jsonb NOT NULL,
	"tx_id" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"relayed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "payment_transitions" ADD CONSTRAINT "payment_transitions_payment_id_payments_id_fk" FOREIGN KEY ("payment_id") REFERENCES "public"."payments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "payments_provider_payment_uq" ON "payments" USING btree ("provider","provider_payment_id");--> statement-breakpoint
CREATE INDEX "payments_next_poll_idx" ON "payments" USING btree ("next_poll_at") WHERE "payments"."next_poll_at" is not null;--> statement-breakpoint
CREATE INDEX "payments_provider_status_idx" ON "payments" USING btree ("provider","status","id");--> statement-breakpoint
CREATE INDEX "payments_status_idx" ON "payments" USING btree ("status","id");--> statement-breakpoint
CREATE UNIQUE INDEX "payment_transitions_payment_version_uq" ON "payment_transitions" USING btree ("payment_id","version");--> statement-breakpoint
CREATE INDEX "payment_transitions_created_idx" ON "payment_transitions" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_receipts_event_uq" ON "webhook_receipts" USING btree ("provider","event_id") WHERE "webhook_receipts"."event_id" is not null;--> statement-breakpoint
CREATE INDEX "webhook_receipts_pending_idx" ON "webhook_receipts" USING btree ("next_attempt_at") WHERE "webhook_receipts"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_receipts_resource_idx" ON "webhook_receipts" USING btree ("provider","resource_id");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_event_id_uq" ON "outbox" USING btree ("event_id");--> statement-breakpoint
CREATE UNIQUE INDEX "outbox_dedupe_key_uq" ON "outbox" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "outbox_tx_order_idx" ON "outbox" USING btree ("tx_id","id");--> statement-breakpoint
CREATE INDEX "outbox_payment_idx" ON "outbox" USING btree ("provider","provider_payment_id","payment_version");--> statement-breakpoint
CREATE INDEX "outbox_unrelayed_idx" ON "outbox" USING btree ("id") WHERE "outbox"."relayed_at" is null;