package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// samples returns the values of the samples of metric name (the text
// format's lines "name{labels} value"), by their labels.
func samples(body, name string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[len(name):i]] = v
	}
	return out
}

// Issue 13: with -metrics the quick start serves the consumer's metrics in
// the Prometheus text format; scraped once caught up, they count every
// message and show no lag.
func TestMetricsEndpointServesTheConsumer(t *testing.T) {
	const messages, partitions = 3000, 3
	var body string
	f := flags{
		topic: "quickstart-metrics", messages: messages, partitions: partitions, concurrency: 8,
		metrics: "127.0.0.1:0",
		onCaughtUp: func(url string) {
			resp, err := http.Get(url)
			if err != nil {
				t.Errorf("scrape: %v", err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("scrape: %s, %v", resp.Status, err)
			}
			body = string(b)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := quickstart(ctx, f); err != nil {
		t.Fatal(err)
	}
	if body == "" {
		t.Fatal("the metrics endpoint was not scraped")
	}
	sum := func(m map[string]float64) (s float64) {
		for _, v := range m {
			s += v
		}
		return s
	}
	consumed := samples(body, "messaging_client_consumed_messages_total")
	if len(consumed) != partitions || sum(consumed) != messages {
		t.Errorf("consumed %v, want %d messages over %d partitions", consumed, messages, partitions)
	}
	lag := samples(body, "inorder_partition_lag")
	if len(lag) != partitions || sum(lag) != 0 {
		t.Errorf("lag %v, want 0 on %d partitions", lag, partitions)
	}
	for _, name := range []string{
		"inorder_partition_oldest_pending_age_seconds",
		"inorder_partition_committed",
		"messaging_process_duration_seconds_count",
		"inorder_commits_total",
	} {
		if len(samples(body, name)) == 0 {
			t.Errorf("%s not served", name)
		}
	}
	if t.Failed() {
		t.Logf("served:\n%s", body)
	}
}
