CREATE TABLE "poller_fleet" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"last_pass_at" timestamp with time zone DEFAULT now() NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"state_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "poller_fleet_one_row" CHECK ("poller_fleet"."id" = 1)
);
