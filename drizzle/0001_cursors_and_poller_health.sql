CREATE TABLE "provider_cursors" (
	"provider" text NOT NULL,
	"account" text NOT NULL,
	"name" text NOT NULL,
	"cursor" text,
	"state" jsonb,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "provider_cursors_provider_account_name_pk" PRIMARY KEY("provider","account","name")
);
--> statement-breakpoint
CREATE TABLE "poller_health" (
	"provider" text NOT NULL,
	"account" text NOT NULL,
	"last_success_at" timestamp with time zone,
	"last_failure_at" timestamp with time zone,
	"last_error" text,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'healthy' NOT NULL,
	"state_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"paused_until" timestamp with time zone,
	CONSTRAINT "poller_health_provider_account_pk" PRIMARY KEY("provider","account")
);
