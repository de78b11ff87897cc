using System.Diagnostics;
using System.Globalization;

namespace CamEngine.Cli;

/// <summary>
/// A one-line progress display for long runs: <c>label: done/total (pct%), mm:ss elapsed, ETA mm:ss</c>, redrawn in
/// place with a carriage return at most every <see cref="MinInterval"/> (and always for the last item), ended
/// with a newline by <see cref="Finish"/>. The ETA assumes the remaining items take as long as the done ones did
/// on average: elapsed * (total - done) / done. Silent when built without a writer; <see cref="ForStderr"/>
/// builds a silent one when stderr is redirected or --quiet was given, so logs and pipes get no \r clutter.
/// </summary>
internal sealed class ConsoleProgress : IProgress<int>, IDisposable
{
    /// <summary>The shortest time between two redraws (4 per second).</summary>
    public static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(250);

    private readonly TextWriter? _writer;
    private readonly Func<TimeSpan> _clock;
    private readonly Lock _lock = new();
    private TimeSpan? _lastDraw;
    private string _shown = "";
    private bool _finished;

    /// <param name="label">What is counted, shown first (e.g. explain).</param>
    /// <param name="total">The number of items the run will do, at least 1.</param>
    /// <param name="writer">Where the line goes; null for a silent progress.</param>
    /// <param name="clock">Time since the start; default a stopwatch started now.</param>
    public ConsoleProgress(string label, int total, TextWriter? writer, Func<TimeSpan>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(label);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(total);
        Label = label;
        Total = total;
        _writer = writer;
        if (clock == null)
        {
            var watch = Stopwatch.StartNew();
            clock = () => watch.Elapsed;
        }
        _clock = clock;
    }

    /// <summary>A progress on <paramref name="stderr"/> when it is the process's own, unredirected standard error
    /// and <paramref name="quiet"/> is false; otherwise a silent one (tests pass their own writers, and get
    /// silence).</summary>
    public static ConsoleProgress ForStderr(string label, int total, TextWriter stderr, bool quiet)
    {
        bool show = !quiet && ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        return new ConsoleProgress(label, total, show ? stderr : null);
    }

    /// <summary>What is counted.</summary>
    public string Label { get; }

    /// <summary>The number of items of the whole run.</summary>
    public int Total { get; }

    /// <summary>Items done so far.</summary>
    public int Done { get; private set; }

    /// <summary>Whether anything is written.</summary>
    public bool Enabled => _writer != null;

    /// <summary>Counts <paramref name="items"/> more items done.</summary>
    public void Advance(int items = 1)
    {
        lock (_lock)
            Update(Done + items);
    }

    /// <summary>Sets the number of items done to <paramref name="value"/> (clamped to [0, Total]).</summary>
    public void Report(int value)
    {
        lock (_lock)
            Update(value);
    }

    /// <summary>Erases the line so that other output can follow on a clean line; the next update redraws it.</summary>
    public void Clear()
    {
        lock (_lock)
        {
            if (_writer == null || _shown.Length == 0)
                return;
            _writer.Write("\r" + new string(' ', _shown.Length) + "\r");
            _writer.Flush();
            _shown = "";
            _lastDraw = null;
        }
    }

    /// <summary>Draws the final state and ends the line (once; later calls do nothing).</summary>
    public void Finish()
    {
        lock (_lock)
        {
            if (_finished)
                return;
            _finished = true;
            if (_writer == null)
                return;
            Draw(Format(Label, Done, Total, _clock()));
            _writer.WriteLine();
            _writer.Flush();
        }
    }

    /// <summary>Same as <see cref="Finish"/>.</summary>
    public void Dispose() => Finish();

    /// <summary>The progress line: <c>label: done/total (pct%), mm:ss elapsed, ETA mm:ss</c>; pct is rounded down
    /// (100% only when done), the ETA is elapsed * (total - done) / done to the nearest second (halves up),
    /// "--:--" before the first item.</summary>
    public static string Format(string label, int done, int total, TimeSpan elapsed)
    {
        long percent = total > 0 ? 100L * done / total : 0;
        string eta = done <= 0
            ? "--:--"
            : Clock(TimeSpan.FromSeconds(
                Math.Round(elapsed.TotalSeconds * (total - done) / done, MidpointRounding.AwayFromZero)));
        return string.Create(CultureInfo.InvariantCulture,
            $"{label}: {done}/{total} ({percent}%), {Clock(elapsed)} elapsed, ETA {eta}");
    }

    /// <summary>A duration as mm:ss, or h:mm:ss from one hour on (whole seconds, rounded down).</summary>
    public static string Clock(TimeSpan t)
    {
        long seconds = Math.Max(0, (long)t.TotalSeconds);
        return seconds >= 3600
            ? string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600}:{seconds / 60 % 60:D2}:{seconds % 60:D2}")
            : string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:D2}:{seconds % 60:D2}");
    }

    private void Update(int value)
    {
        Done = Math.Clamp(value, 0, Total);
        if (_writer == null || _finished)
            return;
        var now = _clock();
        if (_lastDraw is { } last && now - last < MinInterval && Done < Total)
            return;
        _lastDraw = now;
        Draw(Format(Label, Done, Total, now));
    }

    // \r, the line, and spaces over what is left of a longer previous line.
    private void Draw(string line)
    {
        string pad = line.Length < _shown.Length ? new string(' ', _shown.Length - line.Length) : "";
        _writer!.Write("\r" + line + pad);
        _writer.Flush();
        _shown = line;
    }
}
