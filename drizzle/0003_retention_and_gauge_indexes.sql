CREATE INDEX "webhook_receipts_failed_idx" ON "webhook_receipts" USING btree ("provider") WHERE "webhook_receipts"."state" = 'failed';--> statement-breakpoint
CREATE INDEX "webhook_receipts_settled_idx" ON "webhook_receipts" USING btree ("processed_at") WHERE "webhook_receipts"."state" in ('processed', 'ignored');--> statement-breakpoint
CREATE INDEX "outbox_created_idx" ON "outbox" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "event_deliveries_delivered_idx" ON "event_deliveries" USING btree ("delivered_at") WHERE "event_deliveries"."state" = 'delivered';