CREATE TABLE "event_deliveries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"outbox_id" bigint NOT NULL,
	"sink_id" text NOT NULL,
	"event_id" text NOT NULL,
	"event_type" text NOT NULL,
	"provider" text,
	"provider_payment_id" text,
	"payment_version" integer,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_attempt_at" timestamp with time zone,
	"last_status" integer,
	"last_error" text,
	"delivered_at" timestamp with time zone,
	"dead_lettered_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "event_sinks" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"target" text NOT NULL,
	"disabled_at" timestamp with time zone,
	"disabled_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "event_deliveries" ADD CONSTRAINT "event_deliveries_outbox_id_outbox_id_fk" FOREIGN KEY ("outbox_id") REFERENCES "public"."outbox"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "event_deliveries" ADD CONSTRAINT "event_deliveries_sink_id_event_sinks_id_fk" FOREIGN KEY ("sink_id") REFERENCES "public"."event_sinks"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "event_deliveries_outbox_sink_uq" ON "event_deliveries" USING btree ("outbox_id","sink_id");--> statement-breakpoint
CREATE INDEX "event_deliveries_due_idx" ON "event_deliveries" USING btree ("sink_id","next_attempt_at") WHERE "event_deliveries"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "event_deliveries_payment_pending_idx" ON "event_deliveries" USING btree ("sink_id","provider","provider_payment_id","payment_version","outbox_id") WHERE "event_deliveries"."state" = 'pending' and "event_deliveries"."provider_payment_id" is not null;--> statement-breakpoint
CREATE INDEX "event_deliveries_dead_idx" ON "event_deliveries" USING btree ("id") WHERE "event_deliveries"."state" = 'dead';