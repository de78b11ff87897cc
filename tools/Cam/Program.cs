using System.CommandLine;
using System.CommandLine.Help;
using System.Globalization;
using System.Reflection;

namespace CamEngine.Cli;

/// <summary>Bad command-line usage: printed as one line with the command's usage, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>
/// The <c>cam</c> command, parsed with System.CommandLine (POSIX conventions: <c>--name value</c>, <c>--name=value</c>,
/// <c>-o value</c>, <c>--</c> ends the options; generated help and typo suggestions). Exit codes: 0 success; 2 bad
/// usage or bad input, with one line on stderr that names the problem and the command's usage; 1 an unexpected
/// internal error (a bug: the message and stack go to stderr). <c>cam</c> alone prints the usage on stderr, exit 2.
/// </summary>
internal static class Program
{
    private static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var cli = new CliContext(stdout, stderr);
        var root = BuildRoot(cli);
        if (args.Length == 0)
        {
            WriteHelp(root, [], stderr);
            return 2;
        }
        if (args[0] == "--version")
        {
            if (args.Length > 1)
                return Fail(stderr, root, null, $"--version takes no arguments, got '{PrintableText.Escape(args[1])}'");
            stdout.WriteLine($"cam {Version}");
            foreach (var d in SafeDevices())
                stdout.WriteLine($"  {d}");
            return 0;
        }
        var command = root.Subcommands.FirstOrDefault(c => c.Name == args[0]);
        try
        {
            if (command != null)
                CheckOptionValues(command, args);
            var result = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
            if (result.Errors.Count > 0)
                return Fail(stderr, root, result.CommandResult.Command == root ? null : result.CommandResult.Command, Describe(result, root));
            return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            return Fail(stderr, root, command, e.Message);
        }
        catch (OutOfMemoryException)
        {
            stderr.WriteLine($"cam{(command != null ? " " + command.Name : "")}: out of memory while {cli.Stage}; nothing of this run was kept (try a smaller --batch)");
            return 2;
        }
        catch (Exception e) when (e is CamEngineException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"cam{(command != null ? " " + command.Name : "")}: {PrintableText.Escape(OneLine(e.Message))}");
            return 2;
        }
    }

    internal static Command BuildRoot(CliContext cli)
    {
        var root = new Command("cam",
            "cam: explain CNN decisions with class activation maps, on CUDA, OpenCL or the CPU, without an ML runtime. "
            + "IMAGE: a PNG, JPEG or BMP file, a preprocessed float32 .npy of shape (C,H,W) or (N,C,H,W), a folder, or a glob. "
            + "Devices: --device auto|cpu|ilgpu-cpu|cuda|opencl|reference, or the CAMENGINE_DEVICE variable.");
        // A plain command named cam, not a RootCommand (whose name is the executable's: testhost under tests, and whose
        // generated --version would not list the devices, as ours does).
        root.Options.Add(new HelpOption { Recursive = true });
        root.Subcommands.Add(ConvertCommand.Build(cli));
        root.Subcommands.Add(InfoCommand.Build(cli));
        root.Subcommands.Add(PredictCommand.Build(cli));
        root.Subcommands.Add(ExplainCommand.Build(cli));
        root.Subcommands.Add(EvalCommand.Build(cli));
        root.Subcommands.Add(MethodsCommand.Build(cli));
        root.Subcommands.Add(OpsCommand.Build(cli));
        root.Subcommands.Add(DevicesCommand.Build(cli));
        root.Subcommands.Add(TrainCommand.Build(cli));
        return root;
    }

    /// <summary>An option that takes a value, written with a space and followed by a token that starts with '-', is
    /// an error: <c>--out --quiet</c> must not make a folder named --quiet. <c>--out=--quiet</c> says it is meant.</summary>
    private static void CheckOptionValues(Command command, string[] args)
    {
        var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Append("--help").Append("-h").Append("-?").ToList();
        for (int i = 1; i < args.Length; i++)
        {
            string token = args[i];
            if (token == "--")
                return;
            if (!IsOptionLike(token))
                continue;
            string name = token.Split('=', 2)[0];
            var option = command.Options.FirstOrDefault(o => o.Name == name || o.Aliases.Contains(name));
            if (option == null)
            {
                if (names.Contains(name))
                    continue;
                throw new UsageException(WithSuggestion($"unknown option '{PrintableText.Escape(name)}'",
                    CamNames.Suggest(name, names.Where(n => n.StartsWith("--", StringComparison.Ordinal)))));
            }
            if (option.Arity.MaximumNumberOfValues == 0 || option.ValueType == typeof(bool) || token.Contains('=', StringComparison.Ordinal))
                continue;
            if (i + 1 < args.Length && IsOptionLike(args[i + 1]))
                throw new UsageException($"option {token} needs a value, got the option '{PrintableText.Escape(args[i + 1])}'; write {token}={PrintableText.Escape(args[i + 1])} for a value that starts with '-'");
            i++;
        }
    }

    /// <summary>A token that looks like an option: starts with '-', is not '-' alone and not a negative number.</summary>
    private static bool IsOptionLike(string token) =>
        token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _);

    /// <summary>The first parse error in our words: unknown commands and options with the nearest real name.</summary>
    private static string Describe(ParseResult result, Command root)
    {
        var command = result.CommandResult.Command;
        if (result.UnmatchedTokens.Count > 0)
        {
            string token = result.UnmatchedTokens[0];
            string shown = PrintableText.Escape(token);
            if (token.Length > 1 && token[0] == '-' && !double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _))
            {
                string name = token.Split('=', 2)[0];
                var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal));
                return WithSuggestion($"unknown option '{PrintableText.Escape(name)}'", CamNames.Suggest(name, names));
            }
            if (command == root)
                return WithSuggestion($"unknown command '{shown}'", CamNames.Suggest(token, root.Subcommands.Select(c => c.Name)));
            return $"unexpected argument '{shown}'";
        }
        var error = result.Errors[0];
        if (error.SymbolResult is System.CommandLine.Parsing.OptionResult { Tokens.Count: 0 } option)
            return $"option {option.Option.Name} needs a value";
        if (error.SymbolResult is System.CommandLine.Parsing.ArgumentResult { Tokens.Count: 0 } argument)
            return $"missing {argument.Argument.Name}";
        return PrintableText.Escape(OneLine(error.Message)).TrimEnd('.');
    }

    private static string WithSuggestion(string message, string? suggestion) =>
        suggestion == null ? message : $"{message}; did you mean '{suggestion}'?";

    /// <summary>Exit 2 with one line: the problem, then the command's usage line.</summary>
    private static int Fail(TextWriter stderr, Command root, Command? command, string message)
    {
        string usage = command == null
            ? "usage: cam <command> [options]; commands: " + string.Join(", ", root.Subcommands.Select(c => c.Name))
            : $"usage: {UsageLine(command)}; see `cam {command.Name} --help`";
        stderr.WriteLine($"cam{(command != null ? " " + command.Name : "")}: {message} ({usage})");
        return 2;
    }

    /// <summary><c>cam NAME ARG... [options]</c>.</summary>
    internal static string UsageLine(Command command)
    {
        var args = command.Arguments.Select(a => a.Arity.MaximumNumberOfValues > 1 ? a.Name + "..." : a.Name);
        return string.Join(' ', new[] { "cam", command.Name }.Concat(args).Append("[options]"));
    }

    private static void WriteHelp(Command root, string[] path, TextWriter writer)
    {
        var result = root.Parse([.. path, "--help"]);
        result.Invoke(new InvocationConfiguration { Output = writer, Error = writer });
    }

    internal static string Version =>
        typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? "0.0.0";

    internal static string OneLine(string s) => s.ReplaceLineEndings(" ").Trim();

    /// <summary>A table of every device (the managed CPU backend, then each accelerator ILGPU sees): the
    /// <c>--device</c> kind that opens it, its memory, whether <c>--device auto</c> uses it, and its name. When ILGPU
    /// cannot enumerate (a broken driver), the reason.</summary>
    internal static IReadOnlyList<string> SafeDevices()
    {
        const string header = "kind        memory           auto  device";
        static string Line(DeviceInfo d)
        {
            string where = d.Kind is "cpu" or "ilgpu-cpu" ? "host" : "";
            return string.Create(CultureInfo.InvariantCulture,
                $"{d.Kind,-9}  {d.MemoryBytes >> 20,7} MiB {where,-4}  {(d.UsedByAuto ? "yes" : "no"),-4}  {d.Name}");
        }
        try
        {
            return [header, .. CamModel.ListDevices().Select(Line)];
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return [header, $"(the devices could not be listed: {PrintableText.Escape(OneLine(e.Message))})"];
        }
    }
}

/// <summary>What every command's action shares: the output writers, and the stage the run is in (for the
/// out-of-memory message).</summary>
internal sealed class CliContext(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;

    public TextWriter Error { get; } = stderr;

    /// <summary>What the run is doing now, in words ("loading the model", "explaining inputs 1 to 8"...): the
    /// out-of-memory message names it.</summary>
    public string Stage
    {
        get => _stage;
        set
        {
            _stage = value;
            StageEntered?.Invoke(value);
        }
    }

    /// <summary>Called as each stage begins: the tests' way to fail a run at a chosen point (out of memory).</summary>
    internal static Action<string>? StageEntered { get; set; }

    private string _stage = "starting";
}
