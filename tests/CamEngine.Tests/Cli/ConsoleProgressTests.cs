using CamEngine.Cli;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

[TestFixture]
public sealed class ConsoleProgressTests
{
    [Test]
    public void Format_gives_counts_percent_elapsed_and_eta()
    {
        // 3 of 10 in 12 s: 4 s per item, 7 left -> 28 s.
        Assert.That(ConsoleProgress.Format("explain", 3, 10, TimeSpan.FromSeconds(12)),
            Is.EqualTo("explain: 3/10 (30%), 00:12 elapsed, ETA 00:28"));
        Assert.That(ConsoleProgress.Format("explain", 0, 10, TimeSpan.FromSeconds(2)),
            Is.EqualTo("explain: 0/10 (0%), 00:02 elapsed, ETA --:--"));
        // 2 of 3 in 100 s: 50 s left; percent rounds down (66%).
        Assert.That(ConsoleProgress.Format("eval", 2, 3, TimeSpan.FromSeconds(100)),
            Is.EqualTo("eval: 2/3 (66%), 01:40 elapsed, ETA 00:50"));
        // 1 of 400 in 61.5 s: 61.5 * 399 = 24538.5 s -> 6:48:59 (rounded to the nearest second: 24539 s).
        Assert.That(ConsoleProgress.Format("x", 1, 400, TimeSpan.FromSeconds(61.5)),
            Is.EqualTo("x: 1/400 (0%), 01:01 elapsed, ETA 6:48:59"));
        Assert.That(ConsoleProgress.Format("x", 5, 5, TimeSpan.FromSeconds(9)), Is.EqualTo("x: 5/5 (100%), 00:09 elapsed, ETA 00:00"));
        Assert.That(ConsoleProgress.Clock(TimeSpan.FromSeconds(3725.9)), Is.EqualTo("1:02:05"));
        Assert.That(ConsoleProgress.Clock(TimeSpan.FromSeconds(59.9)), Is.EqualTo("00:59"));
    }

    [Test]
    public void Redraws_in_place_at_most_four_times_a_second_and_ends_the_line()
    {
        var now = TimeSpan.Zero;
        using var w = new StringWriter();
        var p = new ConsoleProgress("explain", 4, w, () => now);
        p.Advance(); // first update: drawn
        now = TimeSpan.FromMilliseconds(100);
        p.Advance(); // 100 ms later: skipped
        now = TimeSpan.FromMilliseconds(300);
        p.Advance(); // 300 ms after the last draw: drawn
        now = TimeSpan.FromMilliseconds(350);
        p.Advance(); // the last item: always drawn
        now = TimeSpan.FromMilliseconds(400);
        p.Finish();
        p.Finish(); // once only
        p.Advance(); // after Finish: nothing
        Assert.That(w.ToString(), Is.EqualTo(
            "\rexplain: 1/4 (25%), 00:00 elapsed, ETA 00:00"
            + "\rexplain: 3/4 (75%), 00:00 elapsed, ETA 00:00"
            + "\rexplain: 4/4 (100%), 00:00 elapsed, ETA 00:00"
            + "\rexplain: 4/4 (100%), 00:00 elapsed, ETA 00:00" + Environment.NewLine));
        Assert.That(p.Done, Is.EqualTo(4));
    }

    [Test]
    public void Shorter_lines_blank_the_rest_and_clear_erases_the_line()
    {
        var now = TimeSpan.FromSeconds(4000);
        using var w = new StringWriter();
        var p = new ConsoleProgress("e", 10, w, () => now);
        p.Report(1);   // ETA 4000 * 9 = 36000 s: "e: 1/10 (10%), 1:06:40 elapsed, ETA 10:00:00" (44 characters)
        now = TimeSpan.FromSeconds(4001);
        p.Report(9);   // ETA 4001 / 9 = 444.6 s: "e: 9/10 (90%), 1:06:41 elapsed, ETA 07:25" (41 characters) + 3 spaces
        string text = w.ToString();
        Assert.That(text, Is.EqualTo("\re: 1/10 (10%), 1:06:40 elapsed, ETA 10:00:00\re: 9/10 (90%), 1:06:41 elapsed, ETA 07:25   "));
        p.Clear();
        Assert.That(w.ToString()[text.Length..], Is.EqualTo("\r" + new string(' ', 41) + "\r"));
        now = TimeSpan.FromSeconds(4001.1);
        p.Report(9); // right after a clear: redrawn at once
        Assert.That(w.ToString()[text.Length..],
            Is.EqualTo("\r" + new string(' ', 41) + "\r" + "\re: 9/10 (90%), 1:06:41 elapsed, ETA 07:25"));
    }

    [Test]
    public void Silent_without_a_console()
    {
        using var w = new StringWriter();
        var p = ConsoleProgress.ForStderr("explain", 3, w, quiet: false);
        Assert.That(p.Enabled, Is.False, "a writer that is not the process's stderr gets no progress");
        p.Advance(3);
        p.Finish();
        Assert.That(w.ToString(), Is.Empty);
        Assert.That(ConsoleProgress.ForStderr("explain", 3, Console.Error, quiet: true).Enabled, Is.False);
        Assert.That(() => new ConsoleProgress("x", 0, w), Throws.TypeOf<ArgumentOutOfRangeException>());
    }
}
