using System.Globalization;
using CamEngine.Imaging;
using CamEngine.Methods;
using CamEngine.Reporting;

namespace CamEngine.Cli;

/// <summary>
/// The files <c>cam explain</c> writes per input, by name: <c>STEM.METHOD.png</c> (with a top-K target
/// <c>STEM.METHOD.cC.png</c>), with --npy <c>.npy</c> and <c>.raw.npy</c> beside it, and <c>STEM.grid.png</c> with
/// several methods or classes. The same names serve the plan (before any work), --resume (is an input complete?)
/// and the writing.
/// </summary>
internal sealed class ExplainOutputs(OutputPlan plan, IReadOnlyList<CamMethod> methods, bool npy, int topK, OverlayOptions overlay)
{
    private bool PerClass => topK > 1;

    private bool Grid => methods.Count > 1 || PerClass;

    /// <summary>Every file of an input; <c>*</c> stands for the class of a top-K target.</summary>
    public IEnumerable<string> Planned(string stem)
    {
        foreach (var m in methods)
        {
            string name = $"{stem}.{m.Name}{(PerClass ? ".c*" : "")}";
            yield return name + ".png";
            if (npy)
            {
                yield return name + ".npy";
                yield return name + ".raw.npy";
            }
        }
        if (Grid)
            yield return stem + ".grid.png";
    }

    /// <summary>Whether every file of the input exists (top-K: one per class).</summary>
    public bool Complete(InputFile f) =>
        Planned(f.OutputStem).All(n => plan.Count(n) >= (n.Contains('*', StringComparison.Ordinal) ? topK : 1));

    /// <summary>The inputs to do: with --resume those not complete; otherwise all, after checking that none of their
    /// files exists (unless --overwrite).</summary>
    public List<InputFile> Todo(List<InputFile> mine, bool resume)
    {
        if (resume)
            return mine.Where(f => !Complete(f)).ToList();
        plan.CheckFree(mine.SelectMany(f => Planned(f.OutputStem)));
        return mine;
    }

    /// <summary>Writes one input's files and returns its results.csv rows and its report block.</summary>
    public (List<ResultRow> Rows, ReportImage Report, List<string> Notes) Write(
        string stem, string path, CamInput input, IReadOnlyList<CamResult> results, double[]? probabilities,
        IReadOnlyDictionary<string, double> msPerImage)
    {
        var notes = new List<string>();
        var rows = new List<ResultRow>();
        foreach (var res in results)
        {
            string name = $"{stem}.{res.Method}{(PerClass ? string.Create(CultureInfo.InvariantCulture, $".c{res.ClassIndex}") : "")}";
            var files = new List<string> { name + ".png" };
            plan.Write(name + ".png", OverlayArgs.Png(res, overlay));
            if (npy)
            {
                plan.Write(name + ".npy", res.EncodeMapNpy());
                plan.Write(name + ".raw.npy", res.EncodeRawNpy());
                files.Add(name + ".npy");
                files.Add(name + ".raw.npy");
            }
            if (Grid)
                files.Add(stem + ".grid.png");
            double? p = probabilities != null && res.ClassIndex >= 0 ? probabilities[res.ClassIndex] : null;
            rows.Add(new ResultRow(path, res.ClassIndex, res.Label, res.Score, p, res.Method, string.Join(';', res.Layers), files, msPerImage[res.Method]));
        }
        if (Grid)
        {
            plan.Write(stem + ".grid.png", OverlayArgs.GridPng(results, overlay));
            // Tiles that coincide are marked in the grid; the note says which and why.
            notes.AddRange(CamResult.Coincidences(results).Select(g => $"note: {PrintableText.Escape(stem)}: identical tiles {PrintableText.Escape(g.ToString())}"));
        }
        var report = new ReportImage
        {
            Name = stem, Input = OverlayArgs.Input(input, overlay),
            Overlays = results.Select(t => (PerClass ? $"{t.Method} {t.ClassIndex}" : t.Method, OverlayArgs.Picture(t, overlay))).ToList(),
        };
        return (rows, report, notes);
    }

    /// <summary>The terminal line of an input's result for the first method.</summary>
    public string Line(int done, int total, string stem, CamResult first)
    {
        string what = first.ClassIndex < 0 ? "similarity" : $"class {first.ClassIndex}" + (first.Label != null ? $" ({PrintableText.Escape(first.Label)})" : "");
        string names = methods.Count == 1 ? methods[0].Name : "{" + string.Join(",", methods.Select(m => m.Name)) + "}";
        string cls = PerClass ? string.Create(CultureInfo.InvariantCulture, $".c{first.ClassIndex}") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"[{done}/{total}] {PrintableText.Escape(stem)}: {what}, score {first.Score:G5} -> {PrintableText.Escape(Path.Combine(plan.Folder, stem))}.{names}{cls}.png");
    }
}
