package franz_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kgo"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/kafkatest"
)

// Consume a topic with 32 handlers at once; the commits follow the handlers,
// in order, per partition. Run returns nil once its context ends, after it
// drained, committed and left the group.
func ExampleConsumer_Run() {
	cluster, err := kafkatest.Start(kafkatest.WithTopic("orders", 4))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var recs []kafkatest.Record
	for i := range 1000 {
		recs = append(recs, kafkatest.Record{Partition: int32(i % 4), Value: []byte(strconv.Itoa(i))})
	}
	if _, err := cluster.Produce(ctx, "orders", recs...); err != nil {
		panic(err)
	}

	c, err := franz.NewConsumer(cluster.Addrs(), "billing", []string{"orders"},
		franz.WithConcurrency(32),
		franz.WithCommitInterval(100*time.Millisecond),
		franz.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		// TLS, SASL, the balancer, ... go through kgo's own options.
		franz.WithClientOptions(kgo.Balancers(kgo.CooperativeStickyBalancer())))
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		// Stop once everything is committed.
		if cluster.WaitCommitted(runCtx, "billing", "orders") == nil {
			stop()
		}
	}()
	var handled atomic.Int64
	err = c.Run(runCtx, func(ctx context.Context, rec *kgo.Record) error {
		handled.Add(1) // called concurrently
		return nil
	})
	stop()
	fmt.Println("Run:", err)
	fmt.Println("handled:", handled.Load())
	// Output:
	// Run: <nil>
	// handled: 1000
}

// An orders service. The orders of one customer are handled one at a time,
// in order (ByKey); 64 orders of different customers at once. A failing
// order is retried 3 times (MaxAttempts: 4, the first call included), then
// goes to a dead-letter topic with Spring Kafka's headers; an order the
// handler rejects goes there at once (Permanent). Metrics are served to
// Prometheus; SIGINT or SIGTERM shuts down gracefully: Run drains the
// handlers, commits and leaves the group.
func Example_ordersService() {
	// The test broker stands in for the cluster: 200 orders of 20
	// customers, each customer's on one partition. Orders 7, 57, 107 and
	// 157 are rejected; order 33 always fails; orders 21, 61, 101, 141
	// and 181 fail twice, then succeed.
	cluster, err := kafkatest.Start(kafkatest.WithTopic("orders", 4), kafkatest.WithTopic("orders.DLT", 4))
	if err != nil {
		panic(err)
	}
	defer cluster.Close()
	var orders []kafkatest.Record
	for i := range 200 {
		kind := "order"
		switch {
		case i%50 == 7:
			kind = "bad"
		case i == 33:
			kind = "broken"
		case i%40 == 21:
			kind = "flaky"
		}
		orders = append(orders, kafkatest.Record{Partition: int32(i % 20 % 4),
			Key: []byte("customer-" + strconv.Itoa(i%20)), Value: []byte(kind + "-" + strconv.Itoa(i))})
	}
	if _, err := cluster.Produce(context.Background(), "orders", orders...); err != nil {
		panic(err)
	}

	// Metrics: OpenTelemetry's Prometheus exporter, served at /metrics.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		panic(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// A service listens: go http.ListenAndServe(":9464", mux)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := franz.NewConsumer(cluster.Addrs(), "orders-service", []string{"orders"},
		franz.WithOrdering(franz.ByKey),
		franz.WithConcurrency(64),
		franz.WithRetry(franz.Retry{MaxAttempts: 4, Backoff: 10 * time.Millisecond}),
		franz.WithDeadLetter("orders.DLT"),
		franz.WithMeterProvider(mp),
		franz.WithLogger(slog.New(slog.NewJSONHandler(io.Discard, nil))), // os.Stderr in a service
		franz.WithCommitInterval(100*time.Millisecond))
	if err != nil {
		panic(err)
	}
	var scrape string
	go func() {
		// Here the example stops itself once every order is done, as a
		// SIGTERM would.
		if cluster.WaitCommitted(ctx, "orders-service", "orders") == nil {
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
			scrape = w.Body.String()
			stop()
		}
	}()

	var (
		mu       sync.Mutex
		tries    = map[string]int{} // calls per order
		last     = map[string]int{} // last order handled, per customer
		shuffled int                // orders handled before an earlier one of their customer
		handled  atomic.Int64
	)
	err = c.Run(ctx, func(ctx context.Context, rec *kgo.Record) error {
		kind, n, _ := strings.Cut(string(rec.Value), "-")
		i, _ := strconv.Atoi(n)
		mu.Lock()
		defer mu.Unlock()
		tries[n]++
		switch {
		case kind == "bad":
			return franz.Permanent(errors.New("rejected: unknown product"))
		case kind == "broken", kind == "flaky" && tries[n] <= 2:
			return errors.New("payment service unavailable")
		}
		if prev, ok := last[string(rec.Key)]; ok && prev > i {
			shuffled++
		}
		last[string(rec.Key)] = i
		handled.Add(1)
		return nil
	})
	fmt.Println("Run:", err)
	fmt.Println("handled:", handled.Load(), "out of order:", shuffled)

	dead, err := cluster.Read(context.Background(), "orders.DLT", 5)
	if err != nil {
		panic(err)
	}
	for _, d := range dead {
		if string(d.Value) == "broken-33" {
			topic, _ := d.HeaderValue(franz.HeaderOriginalTopic)
			msg, _ := d.HeaderValue(franz.HeaderExceptionMessage)
			attempts, _ := d.HeaderValue(franz.HeaderAttempts)
			fmt.Printf("dead letters: %d; %s from %s after %s attempts: %s\n", len(dead), d.Value, topic, attempts, msg)
		}
	}

	fmt.Println("metrics: retries", metricSum(scrape, "inorder_handler_retries_total"),
		"dead-lettered", metricSum(scrape, "inorder_messages_dead_lettered_total"))
	// Output:
	// Run: <nil>
	// handled: 195 out of order: 0
	// dead letters: 5; broken-33 from orders after 4 attempts: payment service unavailable
	// metrics: retries 13 dead-lettered 5
}

// metricSum adds up the samples of the metric name in a Prometheus text scrape.
func metricSum(scrape, name string) (total float64) {
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			total += v
		}
	}
	return total
}
