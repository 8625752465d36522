package franz

// This file reports kgo's view of the mistakes a person must hear about to
// the Run's engine.Watch: broker connections, join errors, subscribed
// topics that do not exist, and the group's answers.

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// watchHook reports kgo's broker connections and group errors to a Watch.
type watchHook struct{ w *engine.Watch }

var (
	_ kgo.HookBrokerConnect    = watchHook{}
	_ kgo.HookGroupManageError = watchHook{}
)

func (h watchHook) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.w.ConnFailed(fmt.Errorf("%s: %w", net.JoinHostPort(meta.Host, fmt.Sprint(meta.Port)), err))
		return
	}
	h.w.Connected()
}

func (h watchHook) OnGroupManageError(err error) { h.w.JoinFailed(err) }

// onJoined is kgo's OnPartitionsAssigned, called after every join of the
// group, also when nothing new was assigned: it logs the new partitions.
func (r *runner) onJoined(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	sortTPs(tps)
	r.w.Assigned(tps)
}

// missingTopics returns the subscribed topics the cluster does not have.
func (r *runner) missingTopics(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range r.c.topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, t := range resp.Topics {
		if t.Topic != nil && t.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			out = append(out, *t.Topic)
		}
	}
	return out, nil
}

// connErrorIn reports whether kgo's log line carries a connection error.
func connErrorIn(keyvals []any) bool {
	for _, v := range keyvals {
		if err, ok := v.(error); ok && engine.IsConnError(err) {
			return true
		}
	}
	return false
}
