// Package mixedgroup tests each adapter in one consumer group with a plain
// confluent-kafka-go (librdkafka) consumer, the way a team migrating from a
// Java or librdkafka consumer would run them: same group, same assignor,
// either member first. It has no code of its own, only tests.
package mixedgroup
