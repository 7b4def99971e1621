-- The W3C trace context (`traceparent`) of the transaction that recorded an
-- event, handed with the event to its consumers (in-process, or as an AMQP
-- header), whose spans continue that trace (src/telemetry/propagation.rs).
-- NULL with traces off and for rows older builds write. Expand-only.
ALTER TABLE platform_outbox ADD COLUMN traceparent TEXT;
