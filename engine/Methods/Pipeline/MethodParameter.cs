namespace CamEngine.Methods;

/// <summary>One setting of a method that <see cref="CamMethod.WithParameters"/> (the CLI's <c>--param KEY=VALUE</c>)
/// can change: its key, its default as text, and what it does.</summary>
/// <param name="Key">Lower-case key, e.g. <c>samples</c>.</param>
/// <param name="Default">The default value as it would be written after <c>=</c>.</param>
/// <param name="Description">What the setting does, with its accepted values.</param>
public sealed record MethodParameter(string Key, string Default, string Description);
