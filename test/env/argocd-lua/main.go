// argocd-lua-health runs an Argo CD resource health script the way Argo CD's controller does
// (github.com/yuin/gopher-lua, only the package, base and table libraries, a one-second
// deadline, the object bound to the global `obj`) and prints the health it returns as JSON:
//
//	argocd-lua-health health.lua < object.json   →   {"status":"Healthy","message":"…"}
//
// An invalid status is reported as Unknown, as Argo CD does; a script error or a return
// value that is not a table exits 1 with the error on stderr.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
)

type health struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return lua.LNumber(i)
		}
		f, _ := v.Float64()
		return lua.LNumber(f)
	case string:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

func stringField(tbl *lua.LTable, key string) (string, error) {
	switch v := tbl.RawGetString(key).(type) {
	case *lua.LNilType:
		return "", nil
	case lua.LString:
		return string(v), nil
	default:
		return "", fmt.Errorf("field %q of the returned table is a %s, not a string", key, v.Type().String())
	}
}

func run(scriptPath string) (*health, error) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return nil, err
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return nil, fmt.Errorf("reading stdin: %w", err)
	}
	var obj any
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("reading the object (JSON) from stdin: %w", err)
	}
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(string(script)); err != nil {
		return nil, err
	}
	tbl, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", l.Get(-1).Type().String())
	}
	status, err := stringField(tbl, "status")
	if err != nil {
		return nil, err
	}
	message, err := stringField(tbl, "message")
	if err != nil {
		return nil, err
	}
	if !validStatuses[status] {
		return &health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return &health{Status: status, Message: message}, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-lua-health health.lua < object.json")
		os.Exit(2)
	}
	h, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(h)
	fmt.Println(string(out))
}
