package kafkago_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/metric"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 13: the consumer's metrics, read by an SDK reader, count every
// message once and show every partition committed to its log end.
func TestMetricsCountEveryMessageAndCommitsAtLogEnd(t *testing.T) {
	adaptertest.CheckMetrics(t, func(t *testing.T, addrs []string, group, topic string, mp metric.MeterProvider) func() error {
		cons, err := kafkago.NewConsumer(addrs, group, []string{topic},
			append(fastOpts(testLogger(t)), kafkago.WithMeterProvider(mp))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(context.Context, kafka.Message) error { return nil })
	})
}

func TestNilMeterProviderIsRefused(t *testing.T) {
	_, err := kafkago.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, kafkago.WithMeterProvider(nil))
	if !errors.Is(err, kafkago.ErrInvalidConfig) || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming WithMeterProvider", err)
	}
}
