package confluent

// This file holds what static membership (WithInstanceID, librdkafka's
// group.instance.id) needs beyond librdkafka: when the broker fences the
// member (another one joined with its instance id), librdkafka raises a
// fatal error and refuses every later call; Run drops the partitions
// without a commit (they are the other member's) and ends with ErrFenced.
// confluent-kafka-go v2.11.1's Close never returns for a consumer in that
// state (it ignores the error of rd_kafka_consumer_close_queue, which
// librdkafka refuses to start after a fatal error, and polls for ever:
// confluent-kafka-go #1588, fixed after v2.11.1), so a fenced Run does not
// close its handle (leakFenced).
// A static member's normal end needs nothing more: the session's Close
// drains and commits every partition, and librdkafka's close does not
// leave the group.

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// fencedBy returns the error Run ends with when e says another member took
// this member's instance id, after dropping every partition without a
// commit; nil for any other error. Poll goroutine only.
func (r *runner) fencedBy(e kafka.Error) error {
	if e.Code() != kafka.ErrFencedInstanceID {
		return nil
	}
	tps := slices.SortedFunc(maps.Keys(r.parts), func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	ktps := make([]kafka.TopicPartition, 0, len(tps))
	for _, tp := range tps {
		ktps = append(ktps, r.parts[tp].ktp)
	}
	r.w.Revoked(tps, true)
	r.sess.Lose(tps...)
	for _, tp := range tps {
		r.forget(tp)
	}
	r.ack(r.kc, ktps, false)
	return fmt.Errorf("%w: another member joined group %q with instance id %q: %w",
		ErrFenced, r.c.group, r.cfg.instanceID, e)
}

// leakFenced is what a fenced Run does instead of kafka.Consumer.Close,
// which would never return (see above): it leaves librdkafka's handle, its
// threads and connections, to the process, and says so. Fencing is a
// deployment mistake (two members with one instance id); the process is
// expected to exit.
func (r *runner) leakFenced() {
	r.log.Warn("confluent: fenced: librdkafka's handle is left open until the process exits "+
		"(confluent-kafka-go v2.11.1 cannot close a consumer after a fatal error, #1588)",
		"group", r.c.group, "instance_id", r.cfg.instanceID)
}
