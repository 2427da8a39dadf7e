package event

type scheduled struct {
	Source     string   `json:"source"`
	DetailType string   `json:"detail-type"`
	Time       string   `json:"time"`
	Resources  []string `json:"resources"`
}

func parseSchedule(raw []byte) (*Schedule, error) {
	const shape = ShapeSchedule
	var e scheduled
	if err := decodeStrict(shape, raw, &e); err != nil {
		return nil, err
	}
	t, err := parseTime(e.Time)
	if err != nil {
		return nil, &Error{Shape: shape, Msg: "time", Err: err}
	}
	s := &Schedule{Time: t}
	if len(e.Resources) > 0 {
		s.Rule = e.Resources[0]
	}
	return s, nil
}
