// The built-in English corpus the embedded model's BPE vocabulary is trained on: common words of image
// prompts, grouped by theme. Earlier groups are repeated more often, so their words merge first.

export const PROMPT_CORPUS: readonly string[] = [
  // Function words and the most frequent prompt words.
  `a an the of and with in on at by for from to into over under near behind above below between through
   is are was be it its this that these those as or not no very one two three four five many some all
   art style photo photograph picture image painting drawing illustration portrait landscape scene view
   highly detailed high quality best masterpiece beautiful realistic photorealistic sharp focus lighting
   light dark bright soft hard warm cold color colors colorful vivid trending artstation render rendered
   cinematic dramatic epic intricate elegant digital concept fantasy studio professional award winning`,
  // Colours and materials.
  `red orange yellow green blue purple violet pink brown black white gray grey silver gold golden bronze
   copper teal cyan magenta turquoise crimson scarlet amber ivory beige maroon navy olive lavender indigo
   pastel neon metallic glossy matte wooden wood stone marble glass crystal steel iron metal plastic paper
   leather silk velvet cotton wool fur feathers ceramic porcelain clay concrete brick sand ice water fire`,
  // Nature and places.
  `sky cloud clouds sun sunset sunrise dawn dusk night day evening morning moon stars star galaxy space
   planet earth ocean sea beach wave waves river lake pond waterfall mountain mountains hill hills valley
   forest woods tree trees leaf leaves flower flowers rose roses garden field meadow grass desert island
   jungle snow rain storm fog mist thunder lightning rainbow cave canyon cliff volcano glacier coast shore
   city town village street road bridge castle tower lighthouse house home cabin temple church cathedral
   palace ruins building buildings skyscraper skyline harbor port market cafe restaurant kitchen library
   room bedroom window door wall roof floor stairs garden park farm barn station train airport highway`,
  // Creatures and people.
  `cat cats dog dogs bird birds horse horses fish whale dolphin shark octopus turtle frog snake dragon
   lion tiger bear wolf fox deer rabbit owl eagle raven crow parrot penguin butterfly bee spider monkey
   elephant giraffe zebra cow pig sheep goat chicken duck swan unicorn phoenix robot robots creature monster
   man woman men women boy girl child children baby person people family king queen prince princess knight
   warrior wizard witch astronaut pilot soldier farmer chef doctor scientist artist musician dancer
   character face eyes hair smile hands figure body head portrait profile crowd couple friends stranger`,
  // Objects.
  `car cars truck bicycle motorcycle boat ship sailboat airplane plane rocket spaceship balloon train
   book books cup coffee tea bottle wine bread cake fruit apple apples orange banana strawberry cherry
   table chair sofa bed lamp candle clock mirror vase bowl plate basket box chest key sword shield crown
   hat dress coat jacket shirt shoes umbrella bag guitar piano violin drum camera phone computer screen
   map letter flag sign statue sculpture fountain painting frame poster banner lantern torch crystal`,
  // Adjectives and moods.
  `big small large tiny huge giant little tall short long wide narrow round square old new ancient modern
   young happy sad angry calm peaceful quiet loud lonely mysterious magical mystical surreal dreamy dream
   strange weird cute funny scary creepy dark gloomy moody serene majestic powerful delicate fragile broken
   rusty dusty dirty clean shiny sparkling glowing burning frozen melting floating flying falling running
   walking sitting standing sleeping dancing singing reading painting smiling looking watching holding
   wet dry hot cool fresh rich poor empty full hidden lost abandoned forgotten futuristic retro vintage
   rustic urban rural tropical arctic cosmic celestial heavenly infernal gothic baroque classic classical`,
  // Art media, styles and camera words.
  `oil watercolor acrylic pencil charcoal ink sketch pastel gouache fresco mural collage mosaic engraving
   woodcut lithograph etching print poster comic manga anime cartoon pixel vector graphic design logo icon
   impressionism impressionist expressionism cubism surrealism realism minimalism minimalist abstract pop
   renaissance romantic romanticism nouveau deco ukiyo medieval victorian cyberpunk steampunk solarpunk
   photography camera lens shot closeup close wide angle telephoto macro bokeh depth field exposure film
   grain analog polaroid kodak portra black white monochrome sepia hdr octane unreal engine blender volumetric
   ray tracing global illumination ambient occlusion subsurface scattering reflection reflections shadow
   shadows silhouette backlight backlit rim golden hour blue hour overcast sunny cloudy misty hazy foggy`,
  // Artists and common prompt phrases.
  `greg rutkowski alphonse mucha artgerm james gurney thomas kinkade studio ghibli hayao miyazaki pixar
   disney vincent van gogh claude monet pablo picasso salvador dali rembrandt vermeer leonardo vinci
   hokusai moebius beksinski giger wes anderson tim burton makoto shinkai rossdraws ilya kuvshinov
   trending featured behance deviantart pinterest unsplash national geographic magazine cover editorial
   symmetrical symmetry centered composition rule thirds perspective isometric orthographic aerial
   overhead bird eye level portrait orientation resolution ultra super hyper extremely insanely perfect`,
  // Everyday English, to round out the merges.
  `about after again against also always another any around away back because before being both came can
   come could did does doing down during each even every few first found get give go going good got great
   had has have he her here him his how however just know last left life like line made make may me might
   more most much must my need never next now off often old only other our out own part place put right
   said same saw say see seen she should show side since so something still such take than them then there
   they thing things think those though thought time together too took turn until up upon us use used
   very want way we well went were what when where which while who why will within without word words
   work world would year years yet you your number numbers water story stories music song songs sound
   voice game games sport sports team ball play player winter summer spring autumn fall season weather`,
];

/** Word frequencies: group g's words count (groups − g) times, so the prompt-specific groups dominate. */
export function corpusWordCounts(): Map<string, number> {
  const counts = new Map<string, number>();
  PROMPT_CORPUS.forEach((group, g) => {
    const weight = PROMPT_CORPUS.length - g;
    for (const word of group.split(/\s+/)) {
      if (word) counts.set(word, (counts.get(word) ?? 0) + weight);
    }
  });
  return counts;
}
