package confluent_test

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
)

// Issue: the rebalance protocol used while closing (when librdkafka cannot
// be asked) is the one the configuration selects: COOPERATIVE only when
// every assignor is cooperative, or with the consumer group protocol.
func TestProtocolFromConfiguration(t *testing.T) {
	for _, tc := range []struct {
		cm   kafka.ConfigMap
		want bool
	}{
		{kafka.ConfigMap{}, false},
		{kafka.ConfigMap{"partition.assignment.strategy": "range"}, false},
		{kafka.ConfigMap{"partition.assignment.strategy": "range,roundrobin"}, false},
		{kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky"}, true},
		{kafka.ConfigMap{"partition.assignment.strategy": " cooperative-sticky , cooperative-sticky"}, true},
		{kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky,range"}, false},
		{kafka.ConfigMap{"group.protocol": "consumer"}, true},
		{kafka.ConfigMap{"group.protocol": "classic", "partition.assignment.strategy": "roundrobin"}, false},
	} {
		if got := confluent.CooperativeByConfig(tc.cm); got != tc.want {
			t.Errorf("%v: cooperative = %v, want %v", tc.cm, got, tc.want)
		}
	}
}
