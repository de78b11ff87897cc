namespace CamEngine.Metrics;

/// <summary>Progress of a long metric call, reported after each chunk of model passes.</summary>
/// <param name="Stage">What runs: <c>explain</c> (the maps of a call that explains first; units: images),
/// <c>avgdrop</c>, <c>deletion</c>, <c>insertion</c>, <c>road</c> or <c>sanity</c>.</param>
/// <param name="Done">Units finished: perturbed inputs scored (sanity: randomization steps finished).</param>
/// <param name="Total">Units in the whole call.</param>
public readonly record struct MetricProgress(string Stage, int Done, int Total);
