/**
 * One driver per platform. A `Record` over `Platform`: adding a platform to `PLATFORMS` fails
 * to compile here until it has a driver, rather than falling through to another platform's.
 */
import { dockerDriver } from "./docker/index.ts";
import { kubernetesDriver } from "./kubernetes/index.ts";
import type { Platform, PlatformDriver } from "./platform.ts";

export const platformDrivers: Record<Platform, PlatformDriver> = {
  docker: dockerDriver,
  kubernetes: kubernetesDriver,
};
