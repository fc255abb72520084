// Which task a request asks for: txt2img, img2img, or inpainting (on a 4-channel U-Net, by blending the known region
// back after every step; on a 9-channel inpainting U-Net, by feeding it the mask and the masked image).
import { type GenerateRequest, type ImageInput, InvalidRequestError } from './types.ts';

export type Task =
  | { kind: 'txt2img' }
  | { kind: 'img2img'; image: ImageInput; strength: number }
  | {
      kind: 'inpaint';
      image: ImageInput;
      mask: ImageInput;
      strength: number;
      /** 'blend': a plain 4-channel U-Net; 'concat': a 9-channel inpainting U-Net. */
      unet: 'blend' | 'concat';
    };

/** The task of a checked request; a request this model cannot serve is refused here, before any work. */
export function taskOf(request: GenerateRequest, inpaintingModel: boolean): Task {
  const { image, mask } = request;
  if (!image) {
    if (mask) throw new InvalidRequestError('mask needs an image to inpaint');
    if (inpaintingModel)
      throw new InvalidRequestError('this is an inpainting model (9-channel U-Net): it needs an image and a mask');
    return { kind: 'txt2img' };
  }
  if (!mask) {
    if (inpaintingModel)
      throw new InvalidRequestError('this is an inpainting model (9-channel U-Net): give it a mask with the image');
    // diffusers' img2img default.
    return { kind: 'img2img', image, strength: request.strength ?? 0.8 };
  }
  // diffusers' inpainting default: the masked region starts from pure noise.
  return { kind: 'inpaint', image, mask, strength: request.strength ?? 1, unet: inpaintingModel ? 'concat' : 'blend' };
}
