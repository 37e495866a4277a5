################################################################################
#
# crashkeep
#
################################################################################

CRASHKEEP_VERSION = 0.1.0
CRASHKEEP_SITE = $(or $(call qstrip,$(BR2_PACKAGE_CRASHKEEP_SOURCE)),$(CRASHKEEP_PKGDIR)/../../..)
CRASHKEEP_SITE_METHOD = local
CRASHKEEP_LICENSE = GPL-2.0+

# crashkeep's own build (build/Makefile) makes one static executable per
# target with the host's Debian cross toolchains, not Buildroot's.
CRASHKEEP_TARGET_aarch64 = aarch64
CRASHKEEP_TARGET_arm = armhf
CRASHKEEP_TARGET_mipsel = mipsel
CRASHKEEP_TARGET_x86_64 = x86_64
CRASHKEEP_TARGET = $(CRASHKEEP_TARGET_$(call qstrip,$(BR2_ARCH)))

CRASHKEEP_BOARD = $(call qstrip,$(BR2_PACKAGE_CRASHKEEP_BOARD))
CRASHKEEP_BOARD_FILE = $(if $(filter /%,$(CRASHKEEP_BOARD)),$(CRASHKEEP_BOARD),$(@D)/board-configs/$(CRASHKEEP_BOARD).conf)

define CRASHKEEP_BUILD_CMDS
	@[ -n "$(CRASHKEEP_TARGET)" ] || { echo "crashkeep: no build for BR2_ARCH=$(BR2_ARCH)" >&2; exit 1; }
	$(MAKE) -C $(@D)/build TARGET=$(CRASHKEEP_TARGET)
endef

define CRASHKEEP_INSTALL_TARGET_CMDS
	$(INSTALL) -D -m 0755 $(@D)/build/out/crashkeep-$(CRASHKEEP_TARGET) \
		$(TARGET_DIR)/usr/bin/crashkeep
	$(INSTALL) -D -m 0644 $(CRASHKEEP_BOARD_FILE) \
		$(TARGET_DIR)/etc/crashkeep/board.conf
	$(INSTALL) -D -m 0644 $(@D)/initramfs/crashkeep-hook.sh \
		$(TARGET_DIR)/etc/crashkeep/crashkeep-hook.sh
endef

define CRASHKEEP_INSTALL_INIT_SYSV
	$(INSTALL) -D -m 0755 $(@D)/initscripts/S01crashkeep \
		$(TARGET_DIR)/etc/init.d/S01crashkeep
	$(INSTALL) -D -m 0755 $(@D)/initscripts/S99crashkeep-export \
		$(TARGET_DIR)/etc/init.d/S99crashkeep-export
endef

define CRASHKEEP_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_PSTORE)
	$(call KCONFIG_SET_OPT,CONFIG_PSTORE_RAM,m)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MTD)
	$(call KCONFIG_SET_OPT,CONFIG_MTD_PHRAM,m)
endef

$(eval $(generic-package))
