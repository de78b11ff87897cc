using System.Text.RegularExpressions;
using CamEngine.Cli;
using CamEngine.Methods;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>`cam --help` and every command's help against what the command actually parses.</summary>
[TestFixture]
public sealed partial class HelpTests
{
    /// <summary>Every command the top-level usage lists.</summary>
    private static readonly string[] s_commands = ["convert", "info", "predict", "explain", "eval", "methods", "ops", "devices", "train"];

    private static (int Code, string Out, string Err) Cam(params string[] args)
    {
        using var o = new StringWriter();
        using var e = new StringWriter();
        int code = Program.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [GeneratedRegex(@"^\s+(?:-[a-z], )?(--[a-z][a-z-]*)")]
    private static partial Regex DefinitionLine();

    [Test]
    public void Top_level_usage_lists_every_command_and_every_listed_command_has_help()
    {
        var usage = Cam("--help");
        Assert.That(usage.Code, Is.Zero);
        string commands = usage.Out[usage.Out.IndexOf("Commands:", StringComparison.Ordinal)..];
        var listed = Regex.Matches(commands, @"^\s{2}([a-z]+)\b", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToList();
        Assert.That(listed, Is.EquivalentTo(s_commands));
        foreach (var command in s_commands)
        {
            var r = Cam(command, "--help");
            Assert.That(r.Code, Is.Zero, command);
            Assert.That(r.Out, Does.Contain("Usage:").And.Contain("cam " + command), command);
            Assert.That(Cam(command, "-h").Out, Is.EqualTo(r.Out), command);
        }
        Assert.That(Cam("nosuchcommand").Code, Is.EqualTo(2));
    }

    [Test]
    public void Cam_without_arguments_prints_the_usage_on_stderr_and_exits_2()
    {
        var r = Cam();
        Assert.That(r.Code, Is.EqualTo(2));
        Assert.That(r.Out, Is.Empty);
        Assert.That(r.Err, Does.Contain("Usage:").And.Contain("explain"));
    }

    [TestCaseSource(nameof(s_commands))]
    public void Help_documents_exactly_the_options_the_command_parses(string command)
    {
        var r = Cam(command, "--help");
        Assert.That(r.Code, Is.Zero, r.Err);
        using var quiet = new StringWriter();
        var parsed = Program.BuildRoot(new CliContext(quiet, quiet)).Subcommands.Single(c => c.Name == command)
            .Options.Select(o => o.Name).Where(n => n != "--help").ToList();
        var documented = r.Out.Split('\n')
            .Select(l => DefinitionLine().Match(l)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.Multiple(() =>
        {
            Assert.That(parsed.Except(documented), Is.Empty, $"parsed by `cam {command}` but missing from its help");
            Assert.That(documented.Except(parsed), Is.Empty, $"in `cam {command} --help` but not accepted");
        });
        // Every documented option is accepted: the parser passes it (and a value) and stops at the unknown option
        // after it, so the command itself never runs.
        foreach (var option in documented)
        {
            var probe = Cam(command, option, "v", "--zz-unknown");
            Assert.That(probe.Err, Does.Contain("unknown option '--zz-unknown'"), $"{command} {option}: {probe.Err}");
        }
    }

    [Test]
    public void Explain_help_names_every_convention_and_fusion_it_parses()
    {
        string help = Cam("explain", "--help").Out;
        foreach (var name in new[] { "paper", "pytorch-grad-cam", "torchcam", "mean", "max", "product" })
            Assert.That(help, Does.Contain(name));
        // One unindented line per method; its parameters follow on indented lines.
        var rows = Cam("methods").Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(' ')).ToList();
        Assert.That(rows.Select(r => r.Split(' ')[0]), Is.EqualTo(MethodCatalog.All.Select(m => m.Name)));
    }

    [Test]
    public void Version_prints_the_version_and_a_device_table_that_marks_the_auto_device()
    {
        var r = Cam("--version");
        Assert.That(r.Code, Is.Zero);
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines[0], Is.EqualTo("cam " + Program.Version));
        Assert.That(lines[1], Does.StartWith("kind"));
        Assert.That(lines.Skip(2).Count(l => Regex.IsMatch(l, @"MiB( host)?\s+yes ")), Is.EqualTo(1), r.Out);
        Assert.That(lines.Skip(2).Any(l => l.StartsWith("cpu ", StringComparison.Ordinal)), r.Out);
        Assert.That(Cam("--version", "extra").Code, Is.EqualTo(2));
    }

    [Test]
    public void Devices_lists_every_device_the_library_lists_and_names_the_auto_choice()
    {
        var r = Cam("devices");
        Assert.That(r.Code, Is.Zero, r.Err);
        var devices = CamModel.ListDevices();
        Assert.That(devices.Count(d => d.UsedByAuto), Is.EqualTo(1));
        foreach (var d in devices)
            Assert.That(r.Out, Does.Contain(d.Name));
        var auto = devices.Single(d => d.UsedByAuto);
        Assert.That(r.Out, Does.Contain($"auto selects: {auto.Kind}"));
    }
}
