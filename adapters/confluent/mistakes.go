package confluent

// This file reports librdkafka's view of the mistakes a person must hear
// about to the Run's engine.Watch: its connection errors and log lines,
// and its "subscribed topic not available" errors.

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// brokers returns the bootstrap servers of the configuration.
func (c *Consumer) brokers() []string {
	s, _ := c.cm["bootstrap.servers"].(string)
	return strings.Split(s, ",")
}

// watchError reports e to the Watch when it is one of its mistakes (a
// subscribed topic that does not exist, brokers that cannot be reached),
// and then returns true: the Watch logs it, clientError only at Debug.
func (r *runner) watchError(e kafka.Error) bool {
	switch e.Code() {
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic:
		// "Subscribed topic not available: orders: Broker: Unknown topic
		// or partition"
		for _, t := range r.c.topics {
			if strings.Contains(e.String(), ": "+t+": ") {
				r.w.MissingTopic(t)
				return true
			}
		}
	case kafka.ErrAllBrokersDown:
		// "1/1 brokers are down" says nothing of why: add the last
		// failure librdkafka described.
		if d := r.conn.last.Load(); d != nil {
			r.w.ConnFailed(fmt.Errorf("%w (last failure: %s)", e, *d))
		} else {
			r.w.ConnFailed(e)
		}
		return true
	case kafka.ErrTransport, kafka.ErrResolve:
		r.conn.set(e.String())
		r.w.ConnFailed(e)
		return true
	}
	return false
}

// connDetail is the last connection failure librdkafka described (its log
// lines and transport errors); the poll and log goroutines write it.
type connDetail struct{ last atomic.Pointer[string] }

func (c *connDetail) set(s string) { c.last.Store(&s) }

// watchLog reports a librdkafka log line about a failed connection to the
// Watch, and then returns true (the line goes to Debug only).
func (r *runner) watchLog(ev kafka.LogEvent) bool {
	if ev.Level > 4 {
		return false
	}
	switch ev.Tag {
	case "FAIL", "ERROR", "BROKERFAIL", "CONNECT":
	default:
		return false
	}
	m := ev.Message
	for _, s := range []string{"Connect to", "Connection refused", "brokers are down", "resolve", "Disconnected"} {
		if strings.Contains(m, s) {
			r.conn.set(m)
			r.w.ConnFailed(errors.New(m))
			return true
		}
	}
	return false
}
