CREATE TABLE "event_delivery_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"delivery_id" bigint NOT NULL,
	"sink_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	"outcome" text NOT NULL,
	"status" integer,
	"error" text,
	"answer" text,
	"probe" boolean DEFAULT false NOT NULL,
	"superseded" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
ALTER TABLE "event_delivery_attempts" ADD CONSTRAINT "event_delivery_attempts_delivery_id_event_deliveries_id_fk" FOREIGN KEY ("delivery_id") REFERENCES "public"."event_deliveries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "event_delivery_attempts_delivery_idx" ON "event_delivery_attempts" USING btree ("delivery_id","id");--> statement-breakpoint
CREATE INDEX "event_delivery_attempts_started_idx" ON "event_delivery_attempts" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "event_delivery_attempts_sink_idx" ON "event_delivery_attempts" USING btree ("sink_id","started_at");