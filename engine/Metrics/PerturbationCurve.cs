namespace CamEngine.Metrics;

/// <summary>
/// One explanation's deletion or insertion curve: the score after a fraction of the pixels, ranked by the map,
/// has been deleted (or inserted), and the area under it.
/// </summary>
/// <param name="Image">The explanation's image index in the batch.</param>
/// <param name="TargetClass">The class scored.</param>
/// <param name="Fractions">Fraction of pixels deleted or inserted at each point, from 0 to 1, increasing.</param>
/// <param name="Scores">The class score at each point.</param>
/// <param name="Auc">Area under the curve by the trapezoid rule over the fractions.</param>
public sealed record PerturbationCurve(int Image, int TargetClass, double[] Fractions, double[] Scores, double Auc);
