using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Text;
using CamEngine.Imaging;
using CamEngine.Methods;
using NUnit.Framework;

namespace CamEngine.PackageTests;

/// <summary>
/// What a user gets from NuGet: <c>dotnet pack</c> of the engine, its kernels and the cam tool into a temporary
/// folder (built under its own artifacts path, so the repository's bin/obj stay untouched); the tool installed
/// from there into a temporary tool path and run; the API sample built as a new console project outside the
/// repository (no Directory.Build.props, no central package management) that references the packed package.
/// </summary>
[TestFixture]
[Category("Package")]
public sealed class PackageTests
{
    private static readonly TimeSpan s_processLimit = TimeSpan.FromMinutes(10);
    private string _root = "";
    private string _temp = "";
    private string _feed = "";
    private string _version = "";

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "Engine.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Engine.sln is not above the test folder");
    }

    [OneTimeSetUp]
    public void Pack()
    {
        _root = RepositoryRoot();
        _temp = Path.Combine(Path.GetTempPath(), "camengine-package-" + Guid.NewGuid().ToString("N")[..12]);
        _feed = Path.Combine(_temp, "feed");
        Directory.CreateDirectory(_feed);
        _version = typeof(CamModel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!
            .InformationalVersion.Split('+')[0];
        var clock = Stopwatch.StartNew();
        foreach (var project in new[] { "kernels/CamEngine.Kernels.csproj", "engine/CamEngine.csproj", "tools/Cam/Cam.csproj" })
        {
            Run(_root, "dotnet", "pack", Path.Combine(_root, project), "-c", "Release", "-o", _feed,
                "--artifacts-path", Path.Combine(_temp, "artifacts"));
        }
        TestContext.Progress.WriteLine($"packed in {clock.Elapsed.TotalSeconds:F0} s into {_feed}");
    }

    [OneTimeTearDown]
    public void DeleteTemp()
    {
        if (_temp.Length > 0 && Directory.Exists(_temp))
            Directory.Delete(_temp, recursive: true);
    }

    [Test]
    public void The_packages_carry_readme_licence_docs_symbols_and_the_kernels_dependency()
    {
        foreach (var id in new[] { "CamEngine", "CamEngine.Kernels", "CamEngine.Tool" })
        {
            Assert.That(File.Exists(Path.Combine(_feed, $"{id}.{_version}.snupkg")), $"{id} symbols");
            using var zip = ZipFile.OpenRead(Path.Combine(_feed, $"{id}.{_version}.nupkg"));
            var names = zip.Entries.Select(e => e.FullName).ToList();
            Assert.That(names, Does.Contain("README.md").And.Contain("LICENSE"), id);
            string nuspec = Read(zip, $"{id}.nuspec");
            Assert.That(nuspec, Does.Contain("<license type=\"expression\">MIT</license>")
                .And.Contain($"<version>{_version}</version>").And.Contain("<readme>README.md</readme>")
                .And.Contain("<repository type=\"git\""), id);
        }
        using (var engine = ZipFile.OpenRead(Path.Combine(_feed, $"CamEngine.{_version}.nupkg")))
        {
            var names = engine.Entries.Select(e => e.FullName).ToList();
            Assert.That(names, Does.Contain("lib/net10.0/CamEngine.dll").And.Contain("lib/net10.0/CamEngine.xml"));
            Assert.That(Read(engine, "CamEngine.nuspec"), Does.Contain($"<dependency id=\"CamEngine.Kernels\" version=\"{_version}\""));
        }
        using (var kernels = ZipFile.OpenRead(Path.Combine(_feed, $"CamEngine.Kernels.{_version}.nupkg")))
            Assert.That(Read(kernels, "CamEngine.Kernels.nuspec"), Does.Contain("<dependency id=\"ILGPU\""));
        using var tool = ZipFile.OpenRead(Path.Combine(_feed, $"CamEngine.Tool.{_version}.nupkg"));
        Assert.That(Read(tool, "tools/net10.0/any/DotnetToolSettings.xml"), Does.Contain("<Command Name=\"cam\""));
        Assert.That(Read(tool, "CamEngine.Tool.nuspec"), Does.Contain("<packageType name=\"DotnetTool\""));
    }

    [Test]
    public void The_tool_installs_from_the_local_package_and_runs()
    {
        string tools = Path.Combine(_temp, "tools");
        Run(_temp, "dotnet", "tool", "install", "--tool-path", tools, "--add-source", _feed, "CamEngine.Tool",
            "--version", _version);
        string cam = Path.Combine(tools, OperatingSystem.IsWindows() ? "cam.exe" : "cam");

        string version = Run(_temp, cam, "--version");
        var lines = version.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.That(lines[0], Is.EqualTo($"cam {_version}"));
        Assert.That(lines.Any(l => l.StartsWith("cpu ", StringComparison.Ordinal)), version);

        string methods = Run(_temp, cam, "methods");
        var rows = methods.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith(' ')).ToArray(); // parameters are indented
        Assert.That(rows, Has.Length.EqualTo(MethodCatalog.All.Count));
        Assert.That(rows.Select(r => r.Split(' ')[0]), Is.EqualTo(MethodCatalog.All.Select(m => m.Name)));
    }

    [Test]
    public void A_new_console_project_referencing_the_package_runs_the_api_sample()
    {
        string app = Path.Combine(_temp, "app");
        Directory.CreateDirectory(app);
        // Packages this run restores go to a private folder, so a CamEngine package from an earlier run can never
        // be picked up; the user's global folder serves the third-party packages read-only, unless it already holds
        // a CamEngine package (then everything comes from the sources).
        string global = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        bool fallback = Directory.Exists(global) && !Directory.Exists(Path.Combine(global, "camengine"));
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{_feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(_temp, "packages")}" />
              </config>
              {(fallback ? $"<fallbackPackageFolders><add key=\"user\" value=\"{global}\" /></fallbackPackageFolders>" : "")}
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="CamEngine" Version="{_version}" />
              </ItemGroup>
            </Project>
            """);
        File.Copy(Path.Combine(_root, "tools", "Sample", "Program.cs"), Path.Combine(app, "Program.cs"));
        Run(app, "dotnet", "build", "-c", "Release");
        Assert.That(Directory.Exists(Path.Combine(_temp, "packages", "camengine", _version)), "CamEngine came from the local feed");

        string model = Path.Combine(_root, "models", "tiny_resnet.safetensors");
        string photo = Path.Combine(_root, "models", "images", "chelsea.png");
        string png = Path.Combine(app, "chelsea.gradcam.png");
        string output = Run(app, "dotnet", "run", "-c", "Release", "--no-build", "--", model, photo, png);
        Assert.That(output, Does.Contain("class ").And.Contain($"wrote {png}"));
        var written = ImageDecoder.Load(png);
        // The overlay is drawn on the whole photo (the default view), the model's crop outlined.
        var expected = ImageDecoder.Load(photo);
        Assert.That((written.Width, written.Height), Is.EqualTo((expected.Width, expected.Height)));
    }

    private static string Read(ZipArchive zip, string name)
    {
        var entry = zip.GetEntry(name) ?? throw new AssertionException($"{name} is not in the package");
        using var reader = new StreamReader(entry.Open());
        return reader.ReadToEnd();
    }

    /// <summary>Runs a command to completion (bounded), returning stdout; fails the test with its output otherwise.
    /// MSBuild variables of the test host are removed so that the child SDK resolves on its own.</summary>
    private static string Run(string folder, string file, params string[] args)
    {
        var start = new ProcessStartInfo(file == "dotnet" ? DotnetHost() : file)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)
                                                              || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        start.Environment["CAMENGINE_DEVICE"] = "cpu";
        using var process = Process.Start(start)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data != null) lock (stdout) stdout.Append(e.Data).Append('\n'); };
        process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (stderr) stderr.Append(e.Data).Append('\n'); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(s_processLimit))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"`{file} {string.Join(' ', args)}` ran past {s_processLimit.TotalMinutes} minutes\n{stdout}\n{stderr}");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            Assert.Fail($"`{file} {string.Join(' ', args)}` exited with {process.ExitCode}\n{Tail(stdout)}\n{Tail(stderr)}");
        return stdout.ToString();
    }

    private static string Tail(StringBuilder text) => text.Length <= 6000 ? text.ToString() : text.ToString()[^6000..];

    /// <summary>The dotnet executable running this test (DOTNET_HOST_PATH under `dotnet test`), else `dotnet`.</summary>
    private static string DotnetHost() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
}
