// Command quickstart shows the kafkago adapter at work: it produces
// messages, consumes them with handlers of random latency running
// concurrently, prints progress every second, and ends with a summary that
// checks nothing was lost.
//
//	go run ./examples/quickstart                     # embedded broker, 200000 messages, 8 partitions
//	go run ./examples/quickstart -brokers host:9092 -topic demo
//	go run ./examples/quickstart -metrics :9464      # and serve the metrics at http://localhost:9464/metrics
//
// With no -brokers it starts an in-process Kafka-protocol broker (package
// kafkatest, franz-go's kfake).
// With -metrics it serves the consumer's OpenTelemetry metrics in the
// Prometheus text format (OpenTelemetry's Prometheus exporter).
// The exit status is non-zero if any message was not handled.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/kafkatest"
)

func main() {
	os.Exit(run())
}

type flags struct {
	brokers     string
	topic       string
	messages    int
	partitions  int
	concurrency int
	maxLatency  time.Duration
	verbose     bool
	metrics     string // listen address of the metrics endpoint; "" for none

	// onCaughtUp, if set, is called once everything is handled and
	// committed, while the consumer still runs, with the metrics URL (tests).
	onCaughtUp func(metricsURL string)
}

func run() int {
	var f flags
	flag.StringVar(&f.brokers, "brokers", "", "comma-separated host:port of a Kafka cluster (default: start an embedded broker)")
	flag.StringVar(&f.topic, "topic", "inorder-quickstart", "topic to produce to and consume (created if missing)")
	flag.IntVar(&f.messages, "messages", 200000, "messages to produce and consume")
	flag.IntVar(&f.partitions, "partitions", 8, "partitions of the topic when it is created")
	flag.IntVar(&f.concurrency, "concurrency", 64, "handler goroutines")
	flag.DurationVar(&f.maxLatency, "max-latency", time.Millisecond, "handler latency is random in [0, max-latency); 1 in 1000 takes 50x")
	flag.BoolVar(&f.verbose, "v", false, "log the consumer's info messages")
	flag.StringVar(&f.metrics, "metrics", "", "serve the consumer's metrics in Prometheus format on this address (for example :9464), at /metrics")
	flag.Parse()
	if f.messages < 1 || f.partitions < 1 || f.concurrency < 1 || f.maxLatency < 0 {
		fmt.Fprintln(os.Stderr, "quickstart: -messages, -partitions and -concurrency must be positive, -max-latency not negative")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := quickstart(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		return 1
	}
	return 0
}

func quickstart(ctx context.Context, f flags) error {
	var brokers []string
	if f.brokers == "" {
		c, err := kafkatest.Start()
		if err != nil {
			return err
		}
		defer c.Close()
		brokers = c.Addrs()
		fmt.Printf("embedded broker on %s\n", brokers[0])
	} else {
		brokers = strings.Split(f.brokers, ",")
	}
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	runID := rand.Text()[:8]
	group := "inorder-quickstart-" + runID

	parts, err := ensureTopic(ctx, client, f.topic, f.partitions)
	if err != nil {
		return err
	}
	// Start the group where our messages will begin, so that older data in
	// the topic (real cluster) is not consumed.
	start, err := logEnds(ctx, client, f.topic, parts)
	if err != nil {
		return err
	}
	if err := commit(ctx, client, group, f.topic, start); err != nil {
		return err
	}

	t0 := time.Now()
	if err := produce(ctx, brokers, f.topic, runID, f.messages); err != nil {
		return err
	}
	fmt.Printf("produced %d messages to %s (%d partitions) in %v\n", f.messages, f.topic, parts, time.Since(t0).Round(time.Millisecond))

	level := slog.LevelWarn
	if f.verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	opts := []kafkago.Option{}
	metricsURL := ""
	if f.metrics != "" {
		mp, url, shutdown, err := serveMetrics(f.metrics)
		if err != nil {
			return err
		}
		defer shutdown()
		metricsURL = url
		fmt.Printf("metrics on %s\n", url)
		opts = append(opts, kafkago.WithMeterProvider(mp))
	}
	cons, err := kafkago.NewConsumer(brokers, group, []string{f.topic}, append(opts,
		kafkago.WithConcurrency(f.concurrency),
		kafkago.WithCommitInterval(200*time.Millisecond),
		kafkago.WithSessionTimeout(6*time.Second),
		kafkago.WithRebalanceTimeout(10*time.Second),
		kafkago.WithRevokeTimeout(5*time.Second),
		kafkago.WithFetchMaxWait(100*time.Millisecond),
		kafkago.WithLogger(logger))...)
	if err != nil {
		return err
	}

	// seen[i] counts how many times message i was handled.
	seen := make([]atomic.Int32, f.messages)
	var handled, inHandler, foreign atomic.Int64
	prefix := runID + "-"
	handler := func(ctx context.Context, m kafka.Message) error {
		inHandler.Add(1)
		defer inHandler.Add(-1)
		if f.maxLatency > 0 {
			d := time.Duration(mrand.Int64N(int64(f.maxLatency)))
			if mrand.IntN(1000) == 0 {
				d *= 50
			}
			time.Sleep(d)
		}
		v := string(m.Value)
		i, err := strconv.Atoi(strings.TrimPrefix(v, prefix))
		if !strings.HasPrefix(v, prefix) || err != nil || i < 0 || i >= len(seen) {
			foreign.Add(1)
			return nil
		}
		seen[i].Add(1)
		handled.Add(1)
		return nil
	}

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	t1 := time.Now()
	go func() { errc <- cons.Run(rctx, handler) }()

	var (
		commits   int64
		lastStats []kafkago.PartitionStats
		prev      int64
		mu        sync.Mutex
	)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(10 * time.Minute)
	done := false
	var runErr error
	for !done {
		select {
		case <-ctx.Done():
			done = true
		case runErr = <-errc:
			errc = nil
			done = true
		case <-deadline:
			fmt.Println("giving up after 10 minutes")
			done = true
		case <-tick.C:
			st := cons.Stats()
			mu.Lock()
			if len(st) > 0 {
				lastStats = st
			}
			mu.Unlock()
			h := handled.Load()
			fmt.Println(progress(h, h-prev, inHandler.Load(), st))
			prev = h
			if distinct(seen) == f.messages && caughtUp(st) {
				if f.onCaughtUp != nil {
					f.onCaughtUp(metricsURL)
				}
				done = true
			}
		}
	}
	cancel()
	if errc != nil {
		runErr = <-errc
	}
	elapsed := time.Since(t1)
	for _, s := range lastStats {
		commits += s.Commits
	}
	// The final commits are made by Run on shutdown: read them back.
	final, ferr := committed(context.Background(), client, group, f.topic, parts)
	ends, lerr := logEnds(context.Background(), client, f.topic, parts)

	d := distinct(seen)
	total := handled.Load()
	lost := f.messages - d
	fmt.Println()
	fmt.Println("summary")
	fmt.Printf("  handled     %d (%d distinct of %d produced)\n", total, d, f.messages)
	fmt.Printf("  duplicates  %d\n", total-int64(d))
	fmt.Printf("  lost        %d\n", lost)
	fmt.Printf("  commits     %d (per-partition commits from Stats, last sample before shutdown)\n", commits)
	fmt.Printf("  time        %v (%.0f messages/s)\n", elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds())
	if n := foreign.Load(); n > 0 {
		fmt.Printf("  foreign     %d messages not from this run\n", n)
	}
	if ferr == nil && lerr == nil {
		behind := 0
		for p, e := range ends {
			if final[p] < e {
				behind++
			}
		}
		fmt.Printf("  committed   %d of %d partitions at their log end\n", len(ends)-behind, len(ends))
	}
	switch {
	case runErr != nil:
		return fmt.Errorf("consumer: %w", runErr)
	case lost > 0:
		return fmt.Errorf("%d messages lost", lost)
	}
	return nil
}

func distinct(seen []atomic.Int32) int {
	n := 0
	for i := range seen {
		if seen[i].Load() > 0 {
			n++
		}
	}
	return n
}

func caughtUp(st []kafkago.PartitionStats) bool {
	if len(st) == 0 {
		return false
	}
	for _, s := range st {
		if s.LogEnd < 0 || s.Committed < s.LogEnd {
			return false
		}
	}
	return true
}

// progress is the live line: handled messages and rate, the lag (summed
// over the partitions), the oldest pending age (the longest a partition's
// commit point has not moved while messages were pending), what is in
// flight and the commit points.
func progress(handled, rate, inHandler int64, st []kafkago.PartitionStats) string {
	var b strings.Builder
	var pending, lag int64
	var oldest time.Duration
	for _, s := range st {
		pending += s.Pending
		lag += s.Lag
		oldest = max(oldest, s.Stuck)
	}
	fmt.Fprintf(&b, "handled %8d  %7d/s  lag %7d  oldest pending %6v  in-flight %5d (in handler %3d)  commit points",
		handled, rate, lag, oldest.Round(time.Millisecond), pending, inHandler)
	for _, s := range st {
		fmt.Fprintf(&b, " %d:%d", s.Partition, s.CommitPoint)
	}
	return b.String()
}

func ensureTopic(ctx context.Context, client *kafka.Client, topic string, partitions int) (int, error) {
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
	}}})
	if err != nil {
		return 0, fmt.Errorf("create topic: %w", err)
	}
	if err := resp.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic: %w", err)
	}
	for range 50 {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			return len(md.Topics[0].Partitions), nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, fmt.Errorf("topic %s did not appear in the metadata", topic)
}

func logEnds(ctx context.Context, client *kafka.Client, topic string, parts int) (map[int]int64, error) {
	var reqs []kafka.OffsetRequest
	for p := range parts {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %d: %w", po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

func commit(ctx context.Context, client *kafka.Client, group, topic string, offs map[int]int64) error {
	var cs []kafka.OffsetCommit
	for p, o := range offs {
		cs = append(cs, kafka.OffsetCommit{Partition: p, Offset: o})
	}
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: cs}})
	if err != nil {
		return fmt.Errorf("initial commit: %w", err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("initial commit %d: %w", p.Partition, p.Error)
		}
	}
	return nil
}

func committed(ctx context.Context, client *kafka.Client, group, topic string, parts int) (map[int]int64, error) {
	ps := make([]int, parts)
	for i := range ps {
		ps[i] = i
	}
	resp, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

// produce writes n messages "runID-i" with kafka-go's Writer, round robin.
func produce(ctx context.Context, brokers []string, topic, runID string, n int) error {
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		BatchSize:    5000,
		BatchBytes:   4 << 20,
		BatchTimeout: 5 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Logger:       kafka.LoggerFunc(func(string, ...any) {}),
		ErrorLogger:  kafka.LoggerFunc(func(s string, a ...any) { fmt.Fprintf(io.Discard, s, a...) }),
	}
	defer w.Close()
	const chunk = 20000
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < n; i += chunk {
		msgs = msgs[:0]
		for j := i; j < min(n, i+chunk); j++ {
			msgs = append(msgs, kafka.Message{Value: []byte(runID + "-" + strconv.Itoa(j))})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	return nil
}

// serveMetrics serves the metrics of the meter provider it returns in the
// Prometheus text format on addr, at /metrics, and returns that URL and a
// function that stops the server and the provider.
func serveMetrics(addr string) (*sdkmetric.MeterProvider, string, func(), error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, "", nil, fmt.Errorf("metrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = mp.Shutdown(context.Background())
		return nil, "", nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	shutdown := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	}
	host := ln.Addr().String()
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		host = net.JoinHostPort("localhost", strconv.Itoa(tcp.Port))
	}
	return mp, "http://" + host + "/metrics", shutdown, nil
}
