package confluent

// This file produces failed messages to a dead-letter topic through a
// librdkafka producer that shares the Consumer's connection settings
// (brokers, security, client id); what the engine's DeadLetter hook calls.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// ErrDeadLetter wraps every error of a dead-letter produce (the topic does
// not exist, is not authorized, the cluster is unreachable, the broker did
// not acknowledge in time); the message names the dead-letter topic and the
// librdkafka error is wrapped too (errors.As a kafka.Error).
var ErrDeadLetter = engine.ErrDeadLetter

// producerKeys are the settings of the Consumer's ConfigMap the dead-letter
// producer copies (how to reach and authenticate to the cluster); every
// other (consumer-only) setting is left out.
var producerKeys = map[string]bool{
	"bootstrap.servers": true, "client.id": true, "security.protocol": true,
	"retry.backoff.ms": true, "retry.backoff.max.ms": true,
	"reconnect.backoff.ms": true, "reconnect.backoff.max.ms": true,
	"broker.address.family": true, "broker.address.ttl": true, "client.dns.lookup": true,
	"enable.ssl.certificate.verification": true, "enable.sasl.oauthbearer.unsecure.jwt": true,
	"api.version.request": true, "broker.version.fallback": true, "debug": true,
}

// producerPrefixes are the setting families the producer copies too.
var producerPrefixes = []string{"sasl.", "ssl.", "ssl_", "socket."}

// deadLetter produces failed messages to one dead-letter topic with an
// idempotent librdkafka producer (acks=all), waiting for each message's
// delivery report. An idempotent producer that hit a fatal error refuses
// every later message: the next Produce makes a new one (the old one is
// closed by Close, after the Produce calls that may still wait on it).
// Safe for concurrent use. Close waits for the Produce calls running (a
// handler the engine abandoned may still be in one), so no producer is
// destroyed under a librdkafka call.
type deadLetter struct {
	topic   string
	group   string
	timeout time.Duration
	cm      kafka.ConfigMap // without go.logs.channel: each producer has its own
	log     *slog.Logger
	onCall  func(call string, enter bool) // test hook (config.onCall)

	mu      sync.Mutex
	cur     *producer   // nil: make one at the next Produce
	retired []*producer // hit a fatal error; closed by Close
	closed  bool
	// calls counts the Produce calls that may be inside librdkafka: added
	// to under mu while not closed (begin), waited for by Close after it
	// set closed.
	calls sync.WaitGroup
}

// producer is one librdkafka producer and the goroutine forwarding its
// logs and error events.
type producer struct {
	p       *kafka.Producer
	logs    chan kafka.LogEvent
	stop    chan struct{} // closed by close: the drain goroutine ends
	drained chan struct{} // closed when the drain goroutine has ended
}

// errDeadLetterClosed is Produce's error after Close.
var errDeadLetterClosed = errors.New("confluent: dead-letter producer closed")

// newDeadLetter returns the producer of the dead-letter topic topic: the
// Consumer's bootstrap.servers, client.id, security.protocol, sasl.*,
// ssl.* and socket.* settings, with acks=all, enable.idempotence=true,
// allow.auto.create.topics=false (a missing dead-letter topic is an error,
// not a topic with the broker's defaults) and message.timeout.ms =
// RequestTimeout. It starts librdkafka's threads, and one goroutine that
// forwards its logs to the Consumer's logger. It returns an error wrapping
// ErrInvalidConfig for an empty topic, one of the Consumer's own topics (a
// failed message would come back to the handler) or settings librdkafka
// refuses.
func (c *Consumer) newDeadLetter(topic string) (*deadLetter, error) {
	if topic == "" {
		return nil, fmt.Errorf("%w: dead-letter topic is empty", ErrInvalidConfig)
	}
	for _, t := range c.topics {
		if t == topic {
			return nil, fmt.Errorf("%w: dead-letter topic %q is one of the consumed topics", ErrInvalidConfig, topic)
		}
	}
	d := &deadLetter{topic: topic, group: c.group, timeout: c.opts.RequestTimeout, log: c.opts.Logger,
		onCall: c.cfg.onCall}
	d.cm = kafka.ConfigMap{}
	for k, v := range c.cm {
		if producerKeys[k] || hasAnyPrefix(k, producerPrefixes) {
			d.cm[k] = v
		}
	}
	d.cm["acks"] = "all"
	d.cm["enable.idempotence"] = true
	d.cm["allow.auto.create.topics"] = false
	d.cm["message.timeout.ms"] = int(max(d.timeout, time.Millisecond) / time.Millisecond)
	d.cm["linger.ms"] = 0 // one message at a time: nothing to batch
	p, err := d.newProducer()
	if err != nil {
		return nil, fmt.Errorf("%w: dead-letter producer for %q: librdkafka: %w", ErrInvalidConfig, topic, err)
	}
	d.cur = p
	return d, nil
}

func (d *deadLetter) newProducer() (*producer, error) {
	cm := cloneMap(d.cm)
	pr := &producer{logs: make(chan kafka.LogEvent, 256), stop: make(chan struct{}), drained: make(chan struct{})}
	cm["go.logs.channel.enable"] = true
	cm["go.logs.channel"] = pr.logs
	p, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, err
	}
	pr.p = p
	go pr.drain(d.log, d.topic)
	return pr, nil
}

// begin registers a Produce call with Close and returns the current
// producer, making one if the last one hit a fatal error. On success the
// caller must call d.done once it makes no more librdkafka calls.
func (d *deadLetter) begin() (*producer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errDeadLetterClosed
	}
	if d.cur == nil {
		p, err := d.newProducer()
		if err != nil {
			return nil, err
		}
		d.cur = p
	}
	d.calls.Add(1)
	return d.cur, nil
}

// done ends a call begin registered (the test hook first: a Close waiting
// for the calls must not see this one running).
func (d *deadLetter) done() {
	if d.onCall != nil {
		d.onCall("deadletter", false)
	}
	d.calls.Done()
}

// retireIfFatal replaces p at the next Produce if err, or p's state, is a
// fatal error.
func (d *deadLetter) retireIfFatal(p *producer, err error) {
	var ke kafka.Error
	if !(errors.As(err, &ke) && ke.IsFatal()) && p.p.GetFatalError() == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cur == p {
		d.log.Warn("confluent: dead-letter producer hit a fatal error, replacing it", "topic", d.topic, "error", err)
		d.cur = nil
		d.retired = append(d.retired, p)
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// Produce writes msg to the dead-letter topic with its key, value and
// headers unchanged and the dead-letter headers appended
// (engine.DeadLetter.RecordHeaders: origin, the cause's error text and Go
// type, attempts when > 0), to the partition engine.DeadLetterPartition
// chooses, and returns once its delivery report says every in-sync replica
// has it. It blocks at most about RequestTimeout (metadata, then
// message.timeout.ms), or until ctx ends: then the message may still be
// written (a retry can write it twice). It returns nil when the record is
// written, else an error wrapping ErrDeadLetter that names the topic:
// retry it (the engine retries with backoff). Safe for concurrent use.
func (d *deadLetter) Produce(ctx context.Context, msg *kafka.Message, cause error, attempts int) error {
	pr, out, err := d.build(ctx, msg, cause, attempts)
	if err != nil {
		return err
	}
	defer d.done()
	part := out.TopicPartition.Partition
	report := make(chan kafka.Event, 1)
	if err := pr.p.Produce(out, report); err != nil {
		d.retireIfFatal(pr, err)
		return d.fail(fmt.Sprintf("produce to partition %d", part), err)
	}
	select {
	case ev := <-report:
		m, ok := ev.(*kafka.Message)
		if !ok {
			return d.fail(fmt.Sprintf("produce to partition %d", part), fmt.Errorf("unexpected delivery event %v", ev))
		}
		if err := m.TopicPartition.Error; err != nil {
			d.retireIfFatal(pr, err)
			return d.fail(fmt.Sprintf("produce to partition %d", part), err)
		}
		return nil
	case <-ctx.Done():
		return d.fail(fmt.Sprintf("produce to partition %d: waiting for the delivery report", part), ctx.Err())
	}
}

// build checks msg, takes the producer (d.begin: the caller calls
// d.done once it is done with it, unless build failed) and returns
// it with the dead-letter message of msg (record), within ctx's deadline
// and d's timeout.
func (d *deadLetter) build(ctx context.Context, msg *kafka.Message, cause error, attempts int) (*producer, *kafka.Message, error) {
	if msg == nil {
		return nil, nil, d.fail("message", fmt.Errorf("message is nil"))
	}
	timeout := d.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout < time.Millisecond {
		return nil, nil, d.fail("metadata", context.DeadlineExceeded)
	}
	pr, err := d.begin()
	if err != nil {
		return nil, nil, d.fail("producer", err)
	}
	if d.onCall != nil {
		d.onCall("deadletter", true)
	}
	out, err := d.record(pr, msg, cause, attempts, timeout)
	if err != nil {
		d.done()
		return nil, nil, err
	}
	return pr, out, nil
}

// record returns the dead-letter message of msg, its partition chosen from
// the topic's partition count (a metadata request through pr, bounded by
// timeout).
func (d *deadLetter) record(pr *producer, msg *kafka.Message, cause error, attempts int, timeout time.Duration) (*kafka.Message, error) {
	meta, err := pr.p.GetMetadata(&d.topic, false, int(timeout/time.Millisecond))
	if err != nil {
		return nil, d.fail("metadata", err)
	}
	t, ok := meta.Topics[d.topic]
	switch {
	case !ok:
		return nil, d.fail("metadata", kafka.NewError(kafka.ErrUnknownTopicOrPart, "topic missing from the metadata", false))
	case t.Error.Code() != kafka.ErrNoError:
		return nil, d.fail("metadata", t.Error)
	case len(t.Partitions) == 0:
		return nil, d.fail("metadata", kafka.NewError(kafka.ErrUnknownTopicOrPart, "topic has no partitions", false))
	}
	src := msg.TopicPartition
	dl := engine.DeadLetter{
		Partition: src.Partition,
		Offset:    int64(src.Offset),
		Timestamp: msg.Timestamp,
		Group:     d.group,
		Err:       cause,
		Attempts:  attempts,
		Headers:   make([]engine.Header, len(msg.Headers)),
	}
	if src.Topic != nil {
		dl.Topic = *src.Topic
	}
	if msg.TimestampType == kafka.TimestampLogAppendTime {
		dl.TimestampType = engine.LogAppendTime
	}
	for i, h := range msg.Headers {
		dl.Headers[i] = engine.Header{Key: h.Key, Value: h.Value}
	}
	hs := dl.RecordHeaders()
	out := &kafka.Message{
		TopicPartition: kafka.TopicPartition{
			Topic:     &d.topic,
			Partition: engine.DeadLetterPartition(src.Partition, msg.Key, int32(len(t.Partitions))),
		},
		Key:     msg.Key,
		Value:   msg.Value,
		Headers: make([]kafka.Header, len(hs)),
	}
	for i, h := range hs {
		out.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out, nil
}

// Add is Produce for the exactly-once mode: it records the dead-letter
// message as an output of msg (engine.AddOutput; ctx is the engine's
// dead-letter call's), which the transaction that commits msg as done
// produces. It blocks for the metadata request only (at most about
// RequestTimeout); errors as Produce's.
func (d *deadLetter) Add(ctx context.Context, msg *kafka.Message, cause error, attempts int) error {
	_, out, err := d.build(ctx, msg, cause, attempts)
	if err != nil {
		return err
	}
	d.done()
	if err := engine.AddOutput(ctx, out); err != nil {
		return d.fail("add to the transaction", err)
	}
	return nil
}

func (d *deadLetter) fail(doing string, err error) error {
	return fmt.Errorf("%w: topic %q: %s: %w", ErrDeadLetter, d.topic, doing, err)
}

// drain forwards the producer's logs and error events to log until close.
func (p *producer) drain(log *slog.Logger, topic string) {
	defer close(p.drained)
	events := p.p.Events()
	for {
		select {
		case <-p.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil // closed by Close
				continue
			}
			if err, isErr := ev.(kafka.Error); isErr {
				log.Warn("confluent: dead-letter producer", "topic", topic, "error", err)
			}
		case ev := <-p.logs:
			level := slog.LevelDebug
			switch {
			case ev.Level <= 3:
				level = slog.LevelError
			case ev.Level == 4:
				level = slog.LevelWarn
			} // notice and info (telemetry ids, connections): routine, Debug
			log.Log(context.Background(), level, "librdkafka: "+ev.Message, "tag", ev.Tag, "client", ev.Name)
		}
	}
}

func (p *producer) close() {
	p.p.Close()
	close(p.stop)
	<-p.drained
}

// Close makes every later Produce return an error, waits for the Produce
// calls running (each returns within about RequestTimeout: its metadata
// request and its delivery report are bounded by it, and it stops waiting
// for the report when its context ends), then destroys the producers
// (messages not yet delivered are dropped: their Produce has returned an
// error) and ends their goroutines. Idempotent; safe for concurrent use.
func (d *deadLetter) Close() {
	d.mu.Lock()
	ps := d.retired
	if d.cur != nil {
		ps = append(ps, d.cur)
	}
	d.cur, d.retired, d.closed = nil, nil, true
	d.mu.Unlock()
	// librdkafka forbids destroying a producer under a live call.
	d.calls.Wait()
	if d.onCall != nil {
		d.onCall("deadletter-close", true)
	}
	for _, p := range ps {
		p.close()
	}
}
