package initerr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Report posts err as the init error to the runtime API at api (host:port).
// errType is the Lambda-Runtime-Function-Error-Type, such as
// "Runtime.ConfigError".
func Report(api, errType string, err error) error {
	if api == "" {
		return fmt.Errorf("report init error: AWS_LAMBDA_RUNTIME_API is not set")
	}
	body, _ := json.Marshal(map[string]any{"errorMessage": err.Error(), "errorType": errType, "stackTrace": []string{}})
	req, rerr := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if rerr != nil {
		return fmt.Errorf("report init error: %w", rerr)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Lambda-Runtime-Function-Error-Type", errType)
	c := &http.Client{Timeout: 5 * time.Second}
	resp, rerr := c.Do(req)
	if rerr != nil {
		return fmt.Errorf("report init error: %w", rerr)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("report init error: runtime API answered %s", resp.Status)
	}
	return nil
}
