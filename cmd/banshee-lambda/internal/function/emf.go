package function

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of the function's metrics.
const Namespace = "Banshee"

// metrics writes CloudWatch embedded-metric-format lines: one JSON object
// per line, which CloudWatch Logs turns into metrics without any API call.
type metrics struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

// put writes one EMF line: the named counts under the given dimensions.
func (m *metrics) put(dims map[string]string, values map[string]float64, unit string) error {
	doc := map[string]any{}
	dimNames := []string{} // an empty set, never null, when there are no dimensions
	for k, v := range dims {
		doc[k] = v
		dimNames = append(dimNames, k)
	}
	var ms []emfMetric
	for k, v := range values {
		doc[k] = v
		ms = append(ms, emfMetric{Name: k, Unit: unit})
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         m.now().UnixMilli(),
		"CloudWatchMetrics": []emfDirective{{Namespace: Namespace, Dimensions: [][]string{dimNames}, Metrics: ms}},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err = m.w.Write(append(b, '\n'))
	return err
}
