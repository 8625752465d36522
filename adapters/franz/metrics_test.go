package franz_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/metric"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 13: the consumer's metrics, read by an SDK reader, count every
// message once and show every partition committed to its log end.
func TestMetricsCountEveryMessageAndCommitsAtLogEnd(t *testing.T) {
	adaptertest.CheckMetrics(t, func(t *testing.T, addrs []string, group, topic string, mp metric.MeterProvider) func() error {
		cons, err := franz.NewConsumer(addrs, group, []string{topic},
			append(fastOpts(testLogger(t)), franz.WithMeterProvider(mp))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(context.Context, *kgo.Record) error { return nil })
	})
}

func TestNilMeterProviderIsRefused(t *testing.T) {
	_, err := franz.NewConsumer([]string{"localhost:9092"}, "g", []string{"t"}, franz.WithMeterProvider(nil))
	if !errors.Is(err, franz.ErrInvalidConfig) || !strings.Contains(err.Error(), "WithMeterProvider") {
		t.Fatalf("err = %v, want ErrInvalidConfig naming WithMeterProvider", err)
	}
}
