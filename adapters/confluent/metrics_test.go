package confluent_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/metric"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 13: the consumer's metrics, read by an SDK reader, count every
// message once and show every partition committed to its log end.
func TestMetricsCountEveryMessageAndCommitsAtLogEnd(t *testing.T) {
	adaptertest.CheckMetrics(t, func(t *testing.T, addrs []string, group, topic string, mp metric.MeterProvider) func() error {
		cons, err := confluent.NewConsumer(addrs, group, []string{topic},
			append(fastOpts(testLogger(t)), confluent.WithMeterProvider(mp))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(context.Context, *kafka.Message) error { return nil })
	})
}

func TestNilMeterProviderIsRefused(t *testing.T) {
	_, err := confluent.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, confluent.WithMeterProvider(nil))
	if !errors.Is(err, confluent.ErrInvalidConfig) || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming WithMeterProvider", err)
	}
}
