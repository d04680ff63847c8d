// A minimal Python language host for the Pulumi engine, built by scripts/pulumi-engine.sh.
//
// Why it exists: the Go module proxy does not serve pulumi's language-host modules
// (sdk/python/cmd/pulumi-language-python/v3 answers 403), and the `pulumi` wheel on PyPI ships the
// SDK only, not the host nor its `pulumi-language-python-exec` script. This host does what
// `pulumi package add` and `pulumi preview` need from one, for a program in a virtual environment:
//   - GeneratePackage: the Python SDK of a package schema, by pkg/v3's own Python code generator
//     (a module the proxy does serve), as the engine's host does;
//   - Link: the SDK's folder added to requirements.txt; InstallDependencies: `pip install -r
//     requirements.txt` in the project's virtualenv (made first if it is missing);
//   - Run: the program run by pulumi-language-python-exec (scripts/engine, installed beside this
//     binary), a small script of ours on the PyPI SDK's public runtime API.
//
// It reports no required packages (the real host lists the installed SDKs' pulumi-plugin.json):
// the tests put the providers on PATH, and a package added from a local path is found through the
// project's `packages:`. Only pip and a `virtualenv` option (or python3 on PATH) are handled.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Set with -ldflags -X main.version=... to the CLI version it is built beside.
var version = "0.0.0-dev"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func main() {
	engineAddress := ""
	for _, arg := range os.Args[1:] {
		if arg == "-version" || arg == "--version" {
			fmt.Println(version)
			return
		}
		// The engine passes logging/tracing flags first and its own address last.
		if !strings.HasPrefix(arg, "-") {
			engineAddress = arg
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engineAddress: engineAddress})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: cannot serve: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from our first line of output.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) Handshake(
	context.Context, *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

// interpreter is the Python of a program: its virtualenv's when the project names one (made by
// InstallDependencies if missing), else python3 on PATH.
func interpreter(info *pulumirpc.ProgramInfo) (string, string, error) {
	venv := ""
	if s, ok := info.GetOptions().AsMap()["virtualenv"].(string); ok && s != "" {
		venv = s
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(info.GetRootDirectory(), venv)
		}
		return filepath.Join(venv, "bin", "python"), venv, nil
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		return "", "", errors.New("python3 is not on PATH (and the project names no virtualenv)")
	}
	return p, "", nil
}

func (h *host) About(_ context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	p, _, err := interpreter(req.GetInfo())
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{Executable: p}, nil
}

func (h *host) GeneratePackage(
	_ context.Context, req *pulumirpc.GeneratePackageRequest,
) (*pulumirpc.GeneratePackageResponse, error) {
	loader, err := schema.NewLoaderClient(req.GetLoaderTarget())
	if err != nil {
		return nil, err
	}
	defer loader.Close()
	var spec schema.PackageSpec
	if err := json.Unmarshal([]byte(req.GetSchema()), &spec); err != nil {
		return nil, fmt.Errorf("the package schema is not valid JSON: %w", err)
	}
	cached := schema.NewCachedLoader(loader)
	pkg, diags, err := schema.BindSpec(spec, cached, schema.ValidationOptions{AllowDanglingReferences: true})
	if err != nil {
		return nil, err
	}
	response := &pulumirpc.GeneratePackageResponse{Diagnostics: plugin.HclDiagnosticsToRPCDiagnostics(diags)}
	if diags.HasErrors() {
		return response, nil
	}
	files, err := python.GeneratePackage("pulumi-language-python", pkg, req.GetExtraFiles(), cached)
	if err != nil {
		return nil, err
	}
	for name, data := range files {
		out := filepath.Join(req.GetDirectory(), name)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return nil, err
		}
	}
	return response, nil
}

func (h *host) Link(_ context.Context, req *pulumirpc.LinkRequest) (*pulumirpc.LinkResponse, error) {
	dir := req.GetInfo().GetProgramDirectory()
	requirements := filepath.Join(dir, "requirements.txt")
	content, err := os.ReadFile(requirements)
	if err != nil {
		return nil, fmt.Errorf("no requirements.txt in %s: this host links packages into requirements.txt only", dir)
	}
	lines := strings.Split(strings.TrimRight(string(content), "\n"), "\n")
	var imports strings.Builder
	for _, dep := range req.GetPackages() {
		// pip reads a line with a slash as a local path; "./" keeps a bare folder name one too.
		line := dep.GetPath()
		if !strings.Contains(line, "/") {
			line = "./" + line
		}
		if !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
		name := dep.GetPackage().GetName()
		fmt.Fprintf(&imports, "  import %s as %s\n", python.PyPack("", name), strings.ReplaceAll(name, "-", "_"))
	}
	if err := os.WriteFile(requirements, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return &pulumirpc.LinkResponse{
		ImportInstructions: "You can import the SDK in your Python code with:\n\n" + imports.String(),
	}, nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	info := req.GetInfo()
	py, venv, err := interpreter(info)
	if err != nil {
		return err
	}
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(server.Context(), name, args...)
		cmd.Dir = info.GetProgramDirectory()
		cmd.Stdout, cmd.Stderr = stdout, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return nil
	}
	if venv != "" {
		if _, err := os.Stat(py); errors.Is(err, os.ErrNotExist) {
			python3, err := exec.LookPath("python3")
			if err != nil {
				return errors.New("python3 is not on PATH: it is needed to make the virtualenv " + venv)
			}
			if err := run(python3, "-m", "venv", venv); err != nil {
				return err
			}
		}
	}
	if err := run(py, "-m", "pip", "install", "-r", "requirements.txt"); err != nil {
		return err
	}
	return closer.Close()
}

// execScript is pulumi-language-python-exec, installed beside this binary.
func execScript() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	script := filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("pulumi-language-python-exec is not beside %s: run scripts/pulumi-engine.sh", self)
	}
	return script, nil
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	py, _, err := interpreter(info)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(py); err != nil {
		return nil, fmt.Errorf("%s is missing: run `pulumi install` (or make the virtualenv) first", py)
	}
	script, err := execScript()
	if err != nil {
		return nil, err
	}
	program := filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
	args := []string{"-u", script}
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	add("root_directory", info.GetRootDirectory())
	add("dry_run", fmt.Sprint(req.GetDryRun()))
	add("parallel", fmt.Sprint(req.GetParallel()))
	args = append(args, program)
	args = append(args, req.GetArgs()...)

	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Dir = req.GetPwd()
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
	)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			// 32: the program reported its error through the engine already.
			if exitErr.ExitCode() == 32 {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run python: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}
