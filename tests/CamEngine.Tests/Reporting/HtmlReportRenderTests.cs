using System.Diagnostics;
using CamEngine.Imaging;
using CamEngine.Reporting;
using NUnit.Framework;

namespace CamEngine.Tests.Reporting;

/// <summary>
/// The report as a browser draws it: Debian's chromium, headless, takes a screenshot of the page, and the
/// screenshot must show the embedded pictures (jet colours, the grey input, the chart line), not a blank or broken
/// page. Without chromium the test is reported as ignored, with the reason; .ci/run installs it when it can.
/// </summary>
[TestFixture]
public sealed class HtmlReportRenderTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(60);

    [Test]
    public void Report_renders_in_headless_chromium()
    {
        string? chromium = FindBrowser();
        if (chromium == null)
            Assert.Ignore("chromium not installed: no chromium, chromium-browser or google-chrome on PATH (apt-get install chromium)");
        string dir = Path.Combine(Path.GetTempPath(), "cam-report-render-" + Guid.NewGuid().ToString("N"));
        try
        {
            string page = HtmlReport.Write(Path.Combine(dir, "report"), HtmlReportTests.Sample());
            string shot = Path.Combine(dir, "shot.png");
            var (code, log) = Run(chromium!,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=" + Path.Combine(dir, "profile"), "--screenshot=" + shot, "--window-size=1200,900",
                new Uri(page).AbsoluteUri,
            ]);
            Assert.That(File.Exists(shot), Is.True, $"chromium exited with {code} and wrote no screenshot:\n{log}");
            var image = ImageDecoder.Load(shot);
            Assert.That((image.Width, image.Height), Is.EqualTo((1200, 900)));

            var colours = new HashSet<int>();
            int background = 0;
            for (int i = 0; i < image.Data.Length; i += 3)
            {
                int rgb = image.Data[i] << 16 | image.Data[i + 1] << 8 | image.Data[i + 2];
                colours.Add(rgb);
                background += rgb is 0xFFFFFF or 0xFAFAFA ? 1 : 0;
            }
            int pixels = image.Width * image.Height;
            Assert.That(background, Is.LessThan(pixels * 95 / 100), "not a blank page");
            Assert.That(colours, Has.Count.GreaterThan(100), "text, pictures and chart give many colours");
            // The 64-column jet ramp is drawn 3x with pixelated scaling: its end colours appear as they are.
            Assert.That(Shows(image, (0, 0, 128)), Is.True, "jet(0) = (0, 0, 128)");
            Assert.That(Shows(image, (128, 0, 0)), Is.True, "jet(1) = (128, 0, 0)");
            Assert.That(Shows(image, (128, 128, 128)), Is.True, "the grey input");
            Assert.That(Shows(image, (0, 90, 200)), Is.True, "the chart's line");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static bool Shows(RgbImage image, (int R, int G, int B) c)
    {
        for (int i = 0; i < image.Data.Length; i += 3)
        {
            if (Math.Abs(image.Data[i] - c.R) <= 3 && Math.Abs(image.Data[i + 1] - c.G) <= 3 && Math.Abs(image.Data[i + 2] - c.B) <= 3)
                return true;
        }
        return false;
    }

    private static string? FindBrowser()
    {
        var folders = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries);
        foreach (string name in new[] { "chromium", "chromium-browser", "google-chrome" })
        {
            foreach (string folder in folders)
            {
                string candidate = Path.Combine(folder, name);
                if (File.Exists(candidate))
                    return candidate;
            }
        }
        return null;
    }

    /// <summary>Runs the browser with a timeout; on timeout kills it and everything it started.</summary>
    private static (int Code, string Log) Run(string exe, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string a in args)
            info.ArgumentList.Add(a);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {exe}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(s_timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            Assert.Fail($"chromium did not finish within {s_timeout.TotalSeconds} s");
        }
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
