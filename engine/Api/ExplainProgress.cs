namespace CamEngine;

/// <summary>Progress of a batch call, reported after each batch of images.</summary>
/// <param name="ImagesDone">Images finished so far (every method explained them).</param>
/// <param name="ImageCount">Images in the call; the last report has <paramref name="ImagesDone"/> equal to it.</param>
public readonly record struct ExplainProgress(int ImagesDone, int ImageCount);
